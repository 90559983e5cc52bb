// Live progress on the run page: poll the registry API while the run is queued
// or running; reload once when it ends (the page then shows the version).
(function () {
  "use strict";
  const box = document.getElementById("run");
  if (!box) return;
  const api = box.dataset.api;
  const active = (s) => s === "queued" || s === "running";
  if (!active(box.dataset.status)) return;
  const text = (row, cls, value) => {
    const cell = row.querySelector(cls);
    if (cell) cell.textContent = value;
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
    document.getElementById("run-status").textContent = run.status;
    const rows = document.querySelectorAll("#folds-table tbody tr[data-fold]");
    if (run.folds.length && rows.length !== run.folds.length) {
      window.location.reload();
      return;
    }
    for (const fold of run.folds) {
      const row = document.querySelector(`#folds-table tr[data-fold="${fold.index}"]`);
      if (!row) continue;
      const p = fold.progress || {};
      text(row, ".js-status", fold.status);
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
    if (active(run.status)) setTimeout(poll, 2000);
    else window.location.reload();
  }
  setTimeout(poll, 1000);
})();
