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

// Pages of things still in progress (a run in a timer) reload themselves until done, but
// never while the person is typing into one of the page's forms.
const refresh = document.querySelector("[data-refresh]");
if (refresh) {
  const seconds = Number(refresh.getAttribute("data-refresh")) || 2;
  let touched = false;
  document.addEventListener("input", () => { touched = true; });
  const tick = () => {
    const active = document.activeElement;
    const typing = active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName);
    if (touched || typing) { setTimeout(tick, seconds * 1000); return; }
    window.location.reload();
  };
  setTimeout(tick, seconds * 1000);
}

// The CSRF token of the session, for scripts that POST.
window.eventflowCsrf = () => document.body.getAttribute("data-csrf") || "";
