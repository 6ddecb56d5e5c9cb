// The message editor: line numbers, the error marked at its line and column, and the live
// preview (debounced; each part rendered by the server, HTML shown in a sandboxed frame).
"use strict";

(() => {
  const form = document.getElementById("message-form");
  if (!form) return;
  const DEBOUNCE_MS = 350;

  // One code editor: a textarea without wrapping, a gutter of line numbers and a bar at the
  // error's line (positions follow from the line height, so no mirror of the text is needed).
  class CodeEditor {
    constructor(root) {
      this.root = root;
      this.area = root.querySelector("textarea");
      this.gutter = root.querySelector(".gutter");
      this.bar = root.querySelector(".err-line");
      this.errorLine = 0;
      this.area.addEventListener("input", () => this.numbers());
      this.area.addEventListener("scroll", () => this.place());
      this.numbers();
    }
    metrics() {
      const style = getComputedStyle(this.area);
      if (!this.char) {
        const ctx = document.createElement("canvas").getContext("2d");
        ctx.font = `${style.fontSize} ${style.fontFamily}`;
        this.char = ctx.measureText("0000000000").width / 10;
      }
      return { line: parseFloat(style.lineHeight), top: parseFloat(style.paddingTop),
               left: parseFloat(style.paddingLeft), char: this.char };
    }
    numbers() {
      const count = this.area.value.split("\n").length;
      const rows = Math.max(count, Number(this.area.getAttribute("rows")) || 1);
      let html = "";
      for (let i = 1; i <= rows; i++) {
        html += `<span${i === this.errorLine ? ' class="bad"' : ""}>${i <= count ? i : ""}</span>`;
      }
      this.gutter.innerHTML = html;
      this.place();
    }
    place() {
      this.gutter.scrollTop = this.area.scrollTop;
      if (!this.errorLine) { this.bar.hidden = true; return; }
      const m = this.metrics();
      this.bar.hidden = false;
      this.bar.style.top = `${m.top + (this.errorLine - 1) * m.line - this.area.scrollTop}px`;
      this.bar.style.height = `${m.line}px`;
      // The column: a box around the character the error points at.
      const col = this.bar.querySelector(".err-col") || this.bar.appendChild(document.createElement("span"));
      col.className = "err-col";
      col.hidden = !this.column;
      col.style.left = `${m.left + (this.column - 1) * m.char - this.area.scrollLeft}px`;
      col.style.width = `${m.char}px`;
    }
    mark(line, column) {
      this.errorLine = line || 0;
      this.column = line ? column || 0 : 0;
      this.area.setAttribute("aria-invalid", line ? "true" : "false");
      this.root.classList.toggle("has-error", Boolean(line));
      this.bar.setAttribute("data-column", column || "");
      this.numbers();
    }
    // Puts the caret at the error (the "go to error" link).
    reveal(line, column) {
      const lines = this.area.value.split("\n");
      let offset = 0;
      for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
      offset += Math.max(0, (column || 1) - 1);
      this.area.focus();
      this.area.setSelectionRange(offset, offset + 1);
      const m = this.metrics();
      this.area.scrollTop = Math.max(0, (line - 3) * m.line);
    }
  }

  const editors = {};
  document.querySelectorAll("[data-editor]").forEach((el) => {
    editors[el.getAttribute("data-editor")] = new CodeEditor(el);
  });
  const $ = (id) => document.getElementById(id);
  const state = $("pv-state");
  const frame = $("pv-html");

  function showError(part, error) {
    const box = $(`err-${part}`);
    if (!box) return;
    if (!error) {
      box.hidden = true;
      box.textContent = "";
      if (editors[part]) editors[part].mark(0, 0);
      return;
    }
    box.hidden = false;
    box.textContent = "";
    const where = error.line ? `Line ${error.line}, column ${error.column || 1}: ` : "";
    // The server's message may start with the place already; say it once.
    const text = error.message.replace(/^Template error at line \d+, column \d+: /, "");
    box.append(document.createTextNode(where + text));
    if (editors[part] && error.line) {
      editors[part].mark(error.line, error.column);
      const go = document.createElement("button");
      go.type = "button";
      go.className = "link-button";
      go.textContent = "Go to the error";
      go.addEventListener("click", () => editors[part].reveal(error.line, error.column));
      box.append(" ", go);
    }
  }

  function source() {
    const checked = document.querySelector("input[name=pv-source]:checked");
    return checked ? checked.value : "event";
  }

  function syncSource() {
    const json = source() === "json";
    document.querySelector(".pv-json").hidden = !json;
    document.querySelector(".pv-event").hidden = json;
  }

  let timer = 0;
  let generation = 0;
  function schedule() {
    clearTimeout(timer);
    state.textContent = "typing…";
    timer = setTimeout(run, DEBOUNCE_MS);
  }

  async function run() {
    const mine = ++generation;
    state.textContent = "rendering…";
    const eventSelect = $("pv-event");
    const jsonParam = $("pv-json-param");
    $("f-json-param-save").value = jsonParam ? jsonParam.value : "";
    $("f-event-save").value = eventSelect ? eventSelect.value : "";
    const body = {
      subject: $("f-subject").value, html: $("f-html").value, text: $("f-text").value,
      source: source(), eventId: eventSelect ? eventSelect.value : "",
      jsonParam: jsonParam ? jsonParam.value.trim() : "", json: $("pv-json").value,
    };
    let reply;
    try {
      const res = await fetch("/messages/preview", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": window.eventflowCsrf() },
        body: JSON.stringify(body),
      });
      if (res.status === 401 || res.redirected) { state.textContent = "signed out: reload the page"; return; }
      // An answer that is not JSON (a proxy's page, a crash) is reported by its status.
      const text = await res.text();
      try { reply = JSON.parse(text); } catch (_) { reply = null; }
      if (!res.ok || !reply) {
        const v = reply && reply.violations && reply.violations[0];
        throw new Error(v ? `${v.field} ${v.message}` : (reply && reply.error) || `the server answered ${res.status} ${res.statusText}`);
      }
    } catch (err) {
      if (mine !== generation) return;
      // The failure replaces what an earlier preview marked: it is the news now.
      ["json", "subject", "html", "text"].forEach((part) => showError(part, null));
      state.textContent = `preview failed: ${err.message}`;
      state.classList.add("bad");
      return;
    }
    if (mine !== generation) return;  // a newer preview is on its way
    showError("json", reply.data || null);
    let errors = reply.data ? 1 : 0;
    for (const part of ["subject", "html", "text"]) {
      const r = reply[part] || { rendered: "" };
      showError(part, r.error || null);
      if (r.error) errors++;
    }
    if (!reply.data) {
      $("pv-subject").textContent = (reply.subject && reply.subject.rendered) || "";
      if (reply.html && !reply.html.error) frame.srcdoc = reply.html.rendered || "<p></p>";
      $("pv-text").textContent = (reply.text && reply.text.rendered) || "";
    }
    state.textContent = errors
      ? `${errors} error${errors > 1 ? "s" : ""}; below is the last version that rendered`
      : reply.note ? "up to date; see the note below" : "up to date";
    state.classList.toggle("bad", errors > 0);
    emptyHint(reply, errors);
  }

  // A preview that printed nothing says why it may be (the seed's "the data is not
  // inserted"): most often the loop reads $data.get('array') with no JSON param set.
  function emptyHint(reply, errors) {
    const box = $("pv-hint");
    box.hidden = true;
    box.textContent = "";
    if (reply.note) { box.append(reply.note); box.hidden = false; return; }
    const template = $("f-html").value + $("f-text").value;
    if (errors || !template.trim()) return;
    const html = ((reply.html && reply.html.rendered) || "").replace(/<[^>]*>/g, "");
    const text = (reply.text && reply.text.rendered) || "";
    if ((html + text).trim()) return;
    const select = $("pv-event");
    const option = select ? select.selectedOptions[0] : null;
    const jsonParam = $("pv-json-param");
    box.append("Nothing was printed. ");
    if (source() === "event" && option) {
      const holder = option.dataset.arrayParam;
      if (jsonParam && !jsonParam.value.trim() && holder && /data\.get\(\s*'array'\s*\)/.test(template)) {
        box.append(`$data holds this event's params by name (${option.dataset.params}), and 'array' is inside ${holder}. ` +
                   `Set JSON param to ${holder}, as in the email block's JSON field: `);
        const use = document.createElement("button");
        use.type = "button";
        use.className = "link-button";
        use.textContent = `Use JSON param ${holder}`;
        use.addEventListener("click", () => { jsonParam.value = holder; schedule(); jsonParam.focus(); });
        box.append(use);
      } else {
        box.append(`Check that the variables in the message match this event's params (${option.dataset.params || "none"}): names are case-sensitive.`);
      }
    } else {
      box.append("Check that the variables in the message match the pasted JSON's members: names are case-sensitive.");
    }
    box.hidden = false;
  }

  ["f-subject", "f-html", "f-text", "pv-json", "pv-json-param", "pv-event"].forEach((id) => {
    const el = $(id);
    if (el) el.addEventListener(el.tagName === "SELECT" ? "change" : "input", schedule);
  });
  document.querySelectorAll("input[name=pv-source]").forEach((el) => {
    el.addEventListener("change", () => { syncSource(); schedule(); });
  });

  // The seed's loop over the abandoned cart's items, for a first message.
  const example = $("f-example");
  if (example) {
    example.addEventListener("click", () => {
      if (!$("f-name").value) $("f-name").value = "Abandoned cart";
      if (!$("f-subject").value) $("f-subject").value = "You left $!data.get('array').size() items in your cart";
      $("f-html").value = "<p>You left these in your cart:</p>\n" +
        "#foreach($!item in $!data.get('array'))\n<p>$!item.get('name'): $!item.get('price')</p>\n#end";
      $("f-text").value = "You left these in your cart:\n" +
        "#foreach($!item in $!data.get('array'))\n$!item.get('name'): $!item.get('price')\n#end";
      const jsonParam = $("pv-json-param");
      if (jsonParam && !jsonParam.value) jsonParam.value = "items";
      ["f-html", "f-text"].forEach((id) => $(id).dispatchEvent(new Event("input")));
      $("starter").hidden = true;
      $("f-html").focus();
    });
  }

  // A part longer than the server keeps is refused here, before the page is left, so the
  // text stays in the editor with the reason beside it.
  const maxPart = Number(form.dataset.maxPart) || 0;
  form.addEventListener("submit", (ev) => {
    let first = null;
    for (const part of ["subject", "html", "text"]) {
      const value = $(`f-${part}`).value;
      const length = value.length > maxPart ? Array.from(value).length : 0;
      if (maxPart && length > maxPart) {
        showError(part, { message: `The ${part} is ${length.toLocaleString("en")} characters; a message part may be up to ` +
          `${maxPart.toLocaleString("en")}. Shorten it (move long content to links or images) before saving: a longer one is not saved.` });
        first = first || part;
      }
    }
    if (first) { ev.preventDefault(); $(`f-${first}`).focus(); }
  });

  // Once there is text of one's own, the offer to start from the example goes.
  const starter = $("starter");
  if (starter) {
    ["f-html", "f-text"].forEach((id) => $(id).addEventListener("input", () => {
      if ($("f-html").value || $("f-text").value) starter.hidden = true;
    }));
  }

  // An error the server found on save (a template that does not compile) is marked too.
  const saveError = $("save-error");
  if (saveError && saveError.dataset.line) {
    const field = saveError.dataset.field;
    if (editors[field]) editors[field].mark(Number(saveError.dataset.line), Number(saveError.dataset.column));
  }
  // The preview's JSON param of a saved message is remembered in this browser, so reopening
  // it previews as it was written (the server fills it from a workflow sending it, if any).
  const jsonParamBox = $("pv-json-param");
  const memoKey = form.dataset.templateId ? `eventflow.jsonParam.${form.dataset.templateId}` : "";
  if (memoKey && jsonParamBox) {
    let stored = null;
    try { stored = window.localStorage.getItem(memoKey); } catch (_) { stored = null; }
    if (stored !== null && !jsonParamBox.value && !form.dataset.jsonGiven) jsonParamBox.value = stored;
    jsonParamBox.addEventListener("input", () => {
      try { window.localStorage.setItem(memoKey, jsonParamBox.value.trim()); } catch (_) { /* storage off */ }
    });
  }
  syncSource();
  run();
})();
