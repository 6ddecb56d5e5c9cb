// eventflow console: small behaviours shared by every page (no framework).
"use strict";

document.addEventListener("click", (ev) => {
  const copy = ev.target.closest("[data-copy-prev]");
  if (copy) {
    const pre = copy.previousElementSibling;
    navigator.clipboard?.writeText(pre.innerText).then(() => {
      copy.textContent = "Copied";
      setTimeout(() => { copy.textContent = "Copy command"; }, 1500);
    });
  }
  const back = ev.target.closest("[data-back]");
  if (back && history.length > 1) { ev.preventDefault(); history.back(); }
});

// Forms that start a long action: disable the button and say what is happening.
document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (ev.defaultPrevented) return;  // the page's own check refused it
  const confirmText = form.getAttribute("data-confirm");
  if (confirmText && !window.confirm(confirmText)) { ev.preventDefault(); return; }
  const button = form.querySelector("button[data-busy]");
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = button.getAttribute("data-busy");
  }
});

// Things still in progress (a segment counting, a run in a timer, a letter queued): the
// page's live regions ([data-live] with an id) are fetched again every few seconds and
// swapped in place, so forms elsewhere on the page keep what is typed. It stops when the
// page answers with nothing in progress ([data-refresh] gone). A region without an id
// falls back to reloading the page, never while the person is typing.
const refresh = document.querySelector("[data-refresh]");
if (refresh) {
  const seconds = Number(refresh.getAttribute("data-refresh")) || 2;
  const note = document.getElementById("poll-note");
  const say = document.getElementById("poll-say");
  const problem = (text, html) => {
    if (!note) return;
    note.hidden = !text;
    note.textContent = text || "";
    if (html) note.append(html);
  };
  const typing = () => {
    const active = document.activeElement;
    return active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName);
  };
  // Where focus was, found again in a swapped region (same id, or same link).
  const focusKey = (el) => el.id ? `#${CSS.escape(el.id)}` :
    el.getAttribute("href") ? `[href="${CSS.escape(el.getAttribute("href"))}"]` : null;
  const swap = (fresh) => {
    const active = document.activeElement;
    for (const region of document.querySelectorAll("[data-live][id]")) {
      const next = fresh.getElementById(region.id);
      if (!next || next.outerHTML === region.outerHTML) continue;
      const key = region.contains(active) ? focusKey(active) : null;
      const spoken = next.querySelector("[data-say]");
      region.replaceWith(document.adoptNode(next));
      if (key) document.querySelector(`#${CSS.escape(next.id)} ${key}`)?.focus();
      if (spoken && say) say.textContent = spoken.textContent.trim();
    }
  };
  const tick = async () => {
    if (!refresh.id) {
      if (typing()) { setTimeout(tick, seconds * 1000); return; }
      window.location.reload();
      return;
    }
    try {
      const res = await fetch(window.location.href, { credentials: "same-origin",
                                                      headers: { Accept: "text/html" } });
      if (new URL(res.url).pathname === "/login") {
        const link = document.createElement("a");
        link.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
        link.textContent = "Sign in again";
        problem("Your session has ended, so this page stopped following the progress. ", link);
        return;
      }
      if (!res.ok) throw new Error(`the server answered ${res.status} ${res.statusText}`);
      const fresh = new DOMParser().parseFromString(await res.text(), "text/html");
      problem("");
      const more = fresh.querySelector("[data-refresh]");  // before swap moves it over
      swap(fresh);
      if (!more) return;
    } catch (err) {
      const why = err instanceof TypeError ? "the server did not answer" : err.message;
      problem(`Could not update the progress: ${why}. Trying again every ${seconds} s; ` +
              "if this lasts, check that eventflow is running (make run) and reload the page.");
    }
    setTimeout(tick, seconds * 1000);
  };
  setTimeout(tick, seconds * 1000);
}

// The CSRF token of the session, for scripts that POST.
window.eventflowCsrf = () => document.body.getAttribute("data-csrf") || "";
