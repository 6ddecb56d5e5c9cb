// Contacts bulk import: a pasted or chosen CSV (header row) or JSON list goes to the server
// in chunks, with a progress bar; refusals say what to do next.
"use strict";

(() => {
  const go = document.getElementById("imp-go");
  if (!go) return;
  const $ = (id) => document.getElementById(id);

  // CSV columns and where they go in the contact API form.
  const CHANNELS = { email: "email", phone: "sms", sms: "sms" };
  const FIELDS = ["firstName", "lastName", "externalCustomerId", "contactKey",
                  "languageCode", "timeZone"];
  const ADDRESS = ["town", "region", "postcode", "address"];

  // RFC 4180 rows: quoted fields may hold commas, quotes ("") and line breaks.
  const csvRows = (text) => {
    const rows = [];
    let row = [], field = "", quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        row.push(field); rows.push(row); row = []; field = "";
      } else field += c;
    }
    if (quoted) throw new Error("a quoted field is not closed");
    if (field || row.length) { row.push(field); rows.push(row); }
    return rows.filter((r) => r.some((v) => v.trim()));
  };

  const fromCsv = (text) => {
    const [head, ...rows] = csvRows(text);
    if (!head) throw new Error("the CSV has no header row");
    const lower = Object.fromEntries(
      [...Object.keys(CHANNELS), ...FIELDS, ...ADDRESS].map((n) => [n.toLowerCase(), n]));
    const names = head.map((h) => {
      const name = lower[h.trim().toLowerCase()];
      if (!name) {
        throw new Error(`unknown column "${h.trim()}" in the header row; use email, phone, ` +
                        `${FIELDS.join(", ")}, ${ADDRESS.join(", ")}`);
      }
      return name;
    });
    return rows.map((values, n) => {
      if (values.length > names.length) {
        throw new Error(`row ${n + 2} has ${values.length} values for ${names.length} columns`);
      }
      const contact = {};
      names.forEach((name, i) => {
        const value = (values[i] || "").trim();
        if (!value) return;
        if (CHANNELS[name]) {
          (contact.channels ||= []).push({ type: CHANNELS[name], value });
        } else if (ADDRESS.includes(name)) {
          (contact.address ||= {})[name === "address" ? "address" : name] = value;
        } else contact[name] = value;
      });
      return contact;
    });
  };

  const parse = (text) => {
    const trimmed = text.trim();
    if (!trimmed) throw new Error("nothing to import: paste a CSV or JSON list, or choose a file");
    if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
      let doc;
      try { doc = JSON.parse(trimmed); } catch (err) { throw new Error(`not valid JSON (${err.message})`); }
      if (!Array.isArray(doc)) throw new Error("the JSON must be a list of contacts: [{...}, {...}]");
      return doc;
    }
    return fromCsv(trimmed);
  };

  $("imp-file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (file) $("imp-data").value = await file.text();
  });

  // The next step for what the server refused, by its status.
  const NEXT = {
    DELETED: 'Some contacts were deleted earlier: tick "Bring back contacts deleted earlier" and import the list again.',
    INVALID: "Correct the rows listed below and import the list again: the other contacts are saved, and importing them again only updates them.",
    CONFLICT: 'Two rows name one contact in different ways: keep one of them, or change "Match existing contacts by", and import again.',
  };

  go.addEventListener("click", async () => {
    const state = $("imp-state");
    const bar = $("imp-progress");
    const errors = $("imp-errors");
    const next = $("imp-next");
    errors.textContent = "";
    next.hidden = true;
    let contacts;
    try {
      contacts = parse($("imp-data").value);
    } catch (err) {
      state.textContent = `Wrong Format: ${err.message}.`;
      return;
    }
    const options = { dedupeOn: $("imp-dedupe").value, restoreDeleted: $("imp-restore").checked };
    const groups = $("imp-groups").value.split(",").map((g) => g.trim()).filter(Boolean);
    if (groups.length) options.groupNames = groups;
    const size = Number(go.dataset.chunk) || 500;
    let done = 0, ok = 0, bad = 0;
    const seen = new Set();
    go.disabled = true;
    bar.hidden = false;
    bar.max = contacts.length || 1;
    bar.value = 0;
    try {
      for (let start = 0; start < contacts.length; start += size) {
        state.textContent = `Importing ${done} of ${contacts.length}…`;
        const res = await fetch("/contacts/import", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": window.eventflowCsrf() },
          body: JSON.stringify({ contacts: contacts.slice(start, start + size), ...options }),
        });
        const reply = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
        if (!res.ok) {
          const where = (reply.violations || []).map((v) => `${v.field}: ${v.message}`);
          throw new Error([reply.error, ...where].filter(Boolean).join("; "));
        }
        ok += reply.successCount;
        bad += reply.errorCount;
        for (const e of reply.errors) {
          const li = document.createElement("li");
          li.textContent = `Contact ${start + e.index + 1}: ${e.status}, ${e.errors.join("; ")}`;
          errors.append(li);
          seen.add(e.status);
        }
        done = Math.min(start + size, contacts.length);
        bar.value = done;
      }
      state.textContent = `Done: ${ok} imported, ${bad} refused.`;
      const steps = [...seen].map((s) => NEXT[s]).filter(Boolean);
      if (steps.length) { next.textContent = steps.join(" "); next.hidden = false; }
    } catch (err) {
      state.textContent = `Stopped after ${done} of ${contacts.length}: ${err.message}`;
      next.textContent = done ?
        `The first ${done} are saved. Correct the problem and import the list again: contacts already imported are only updated.` :
        "Nothing was saved. Correct the problem and press Import again.";
      next.hidden = false;
    } finally {
      go.disabled = false;
    }
  });
})();
