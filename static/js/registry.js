// The registry pages: a confirm step before a promotion or a rollback, and live
// progress on the run page.
(function () {
  "use strict";

  // Forms that change which version is active say what they will do and wait
  // for a yes; once sent, their button cannot send them twice.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    const button = event.submitter;
    if (button) {
      button.dataset.label = button.textContent;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      if (form.dataset.busy) button.textContent = form.dataset.busy;
    }
  });
  // Back to a page kept in the back/forward cache: its forms can be sent again.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent]").forEach((form) => delete form.dataset.sent);
    document.querySelectorAll("button[aria-busy]").forEach((button) => {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      if (button.dataset.label) button.textContent = button.dataset.label;
    });
  });

  // Run page: poll the registry API while the run is queued or running; reload
  // once when it ends (the page then shows the version).
  const box = document.getElementById("run");
  if (!box) return;
  const api = box.dataset.api;
  const active = (s) => s === "queued" || s === "running";
  if (!active(box.dataset.status)) return;
  const text = (row, cls, value) => {
    const cell = row.querySelector(cls);
    if (cell) cell.textContent = value;
  };
  // Status words as the server renders them ("Running"), never the raw value.
  const showStatus = (node, value, label) => {
    if (!node) return;
    node.textContent = label || value;
    node.className = node.className.replace(/\bstatus--\S+/, `status--${value}`);
  };
  async function poll() {
    let run;
    try {
      const response = await fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(response.status);
      run = await response.json();
    } catch (err) {
      setTimeout(poll, 5000);
      return;
    }
    showStatus(document.getElementById("run-status"), run.status, run.status_display);
    const rows = document.querySelectorAll("#folds-table tbody tr[data-fold]");
    if (run.folds.length && rows.length !== run.folds.length) {
      window.location.reload();
      return;
    }
    for (const fold of run.folds) {
      const row = document.querySelector(`#folds-table tr[data-fold="${fold.index}"]`);
      if (!row) continue;
      const p = fold.progress || {};
      showStatus(row.querySelector(".js-status"), fold.status, fold.status_display);
      const note = row.querySelector(".js-note");
      if (note) {
        note.textContent = fold.error_message || "";
        note.hidden = !fold.error_message;
      }
      text(row, ".js-epoch", p.epoch ? `${p.epoch}/${p.epochs}` : "");
      text(row, ".js-step", p.step ? `${p.step}/${p.steps}` : "");
      text(row, ".js-metrics", Object.entries(p.metrics || {}).map(([k, v]) => `${k} ${v}`).join(" "));
      text(row, ".js-memory", p.peak_memory_mb ? `${Math.round(p.peak_memory_mb)} MB` : "");
    }
    const log = [run.log_tail, ...run.folds.map((f) => f.log_tail).filter(Boolean)].join("\n");
    document.getElementById("run-log").textContent = log;
    if (run.error_message) {
      const error = document.getElementById("run-error");
      error.textContent = run.error_message;
      error.hidden = false;
    }
    const updated = document.getElementById("run-updated");
    if (updated) updated.textContent = ` · live, updated ${new Date().toLocaleTimeString()}`;
    if (active(run.status)) setTimeout(poll, 2000);
    else window.location.reload();
  }
  setTimeout(poll, 1000);
})();
