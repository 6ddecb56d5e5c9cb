// Contacts bulk import: the pasted list goes to the server in chunks, with a progress bar.
"use strict";

(() => {
  const go = document.getElementById("imp-go");
  if (!go) return;
  const $ = (id) => document.getElementById(id);
  go.addEventListener("click", async () => {
    const state = $("imp-state");
    const bar = $("imp-progress");
    const errors = $("imp-errors");
    errors.textContent = "";
    let contacts;
    try {
      contacts = JSON.parse($("imp-data").value);
      if (!Array.isArray(contacts)) throw new Error("the data must be a JSON list of contacts");
    } catch (err) {
      state.textContent = `Wrong Format: ${err.message}`;
      return;
    }
    const size = Number(go.dataset.chunk) || 500;
    let done = 0, ok = 0, bad = 0;
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
          body: JSON.stringify({ contacts: contacts.slice(start, start + size) }),
        });
        const reply = await res.json().catch(() => ({ error: res.statusText }));
        if (!res.ok) throw new Error(reply.error || res.statusText);
        ok += reply.successCount;
        bad += reply.errorCount;
        for (const e of reply.errors) {
          const li = document.createElement("li");
          li.textContent = `contact ${start + e.index + 1}: ${e.status} ${e.errors.join("; ")}`;
          errors.append(li);
        }
        done = Math.min(start + size, contacts.length);
        bar.value = done;
      }
      state.textContent = `Done: ${ok} imported, ${bad} refused.`;
    } catch (err) {
      state.textContent = `Stopped after ${done} of ${contacts.length}: ${err.message}`;
    } finally {
      go.disabled = false;
    }
  });
})();
