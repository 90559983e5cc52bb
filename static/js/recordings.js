// Recording detail page: poll the status endpoint while the worker runs, and let the
// operator click target sperm on the first frame (detections drawn over it).
(function () {
  "use strict";

  var statusBox = document.getElementById("recording-status");
  if (!statusBox) return;

  var POLL_MS = 1000;
  var statusUrl = statusBox.dataset.statusUrl;
  var lastStatus = statusBox.dataset.status;
  var previewShown = false;

  function setField(name, text) {
    var el = statusBox.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = text;
    return el;
  }

  function render(s) {
    var label = setField("status_label", s.status_label);
    if (label) label.className = "status status--" + s.status;
    setField("progress_percent", Math.round(s.progress_percent));
    setField("frames_per_s", s.frames_per_s === null ? "–" : s.frames_per_s);
    setField("n_clips", s.n_clips);
    var bar = statusBox.querySelector(".progress__bar");
    if (bar) bar.style.width = s.progress_percent + "%";
    var progress = statusBox.querySelector(".progress");
    if (progress) progress.setAttribute("aria-valuenow", s.progress_percent);
    var error = statusBox.querySelector('[data-field="error_message"]');
    if (error) {
      error.textContent = s.error_message;
      error.hidden = !s.error_message;
    }
  }

  function needsPolling(s) {
    if (s.status === "queued" || s.status === "processing") return true;
    // Manual mode: wait for the worker to write the first frame.
    return s.status === "uploaded" && !s.preview_ready;
  }

  function poll() {
    fetch(statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (s) {
        render(s);
        if (s.preview_ready && !previewShown) loadPreview();
        var changed = s.status !== lastStatus;
        lastStatus = s.status;
        if (changed && s.finished) {
          // New clips or a final error: reload to show them with the page's layout.
          window.location.reload();
          return;
        }
        if (needsPolling(s)) window.setTimeout(poll, POLL_MS);
      })
      .catch(function () {
        // The server may be restarting: try again a little later.
        window.setTimeout(poll, POLL_MS * 5);
      });
  }

  // --- choosing targets on the first frame ---------------------------------------
  var targetsBox = document.getElementById("targets");
  var canvas = document.getElementById("frame-canvas");
  var input = document.getElementById("targets-input");
  var count = document.getElementById("targets-count");
  var submit = document.getElementById("targets-submit");
  var image = new Image();
  var detections = [];
  var targets = [];
  try {
    targets = JSON.parse(document.getElementById("targets-initial").textContent) || [];
  } catch (e) {
    targets = [];
  }

  function draw() {
    // The form follows the targets at once; only painting waits for the image, so a
    // click made while the frame is still loading is never lost from the submission.
    syncForm();
    if (!canvas || !image.complete || !image.naturalWidth) return;
    var ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    var line = Math.max(1, canvas.width / 500);
    ctx.lineWidth = line;
    ctx.strokeStyle = "rgba(0, 200, 255, 0.9)";
    detections.forEach(function (d) {
      ctx.strokeRect(d.x0, d.y0, d.x1 - d.x0, d.y1 - d.y0);
    });
    ctx.lineWidth = 2 * line;
    ctx.strokeStyle = "rgba(255, 70, 70, 1)";
    ctx.fillStyle = "rgba(255, 70, 70, 1)";
    ctx.font = Math.round(14 * line) + "px sans-serif";
    targets.forEach(function (p, i) {
      ctx.beginPath();
      ctx.arc(p[0], p[1], 10 * line, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.fillText(String(i + 1), p[0] + 12 * line, p[1] - 8 * line);
    });
  }

  function syncForm() {
    if (!input) return;
    input.value = JSON.stringify(targets);
    count.textContent = targets.length;
    submit.disabled = targets.length === 0 || lastStatus === "queued" || lastStatus === "processing";
  }

  function loadPreview() {
    if (!targetsBox || !canvas) return;
    previewShown = true;
    fetch(targetsBox.dataset.detectionsUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { detections: [] }; })
      .then(function (payload) {
        detections = payload.detections || [];
        if (payload.width) { canvas.width = payload.width; canvas.height = payload.height; }
        image.onload = function () {
          targetsBox.querySelector(".frame-wrap").hidden = false;
          var waiting = document.getElementById("preview-waiting");
          if (waiting) waiting.hidden = true;
          draw();
        };
        image.src = targetsBox.dataset.frameUrl + "?v=" + Date.now();
      });
  }

  function snap(x, y) {
    // A click near a detected head snaps to its centre.
    var best = null, bestD = Infinity;
    detections.forEach(function (d) {
      var cx = (d.x0 + d.x1) / 2, cy = (d.y0 + d.y1) / 2;
      var dist = Math.hypot(cx - x, cy - y);
      if (dist < bestD) { bestD = dist; best = [cx, cy]; }
    });
    var reach = Math.max(12, canvas.width / 60);
    return best && bestD <= reach ? best : [x, y];
  }

  if (canvas) {
    canvas.addEventListener("click", function (event) {
      var rect = canvas.getBoundingClientRect();
      var x = (event.clientX - rect.left) * canvas.width / rect.width;
      var y = (event.clientY - rect.top) * canvas.height / rect.height;
      var near = targets.findIndex(function (p) { return Math.hypot(p[0] - x, p[1] - y) < 12; });
      if (near >= 0) {
        targets.splice(near, 1);
      } else {
        var p = snap(x, y);
        targets.push([Math.round(p[0] * 10) / 10, Math.round(p[1] * 10) / 10]);
      }
      draw();
    });
    document.getElementById("targets-clear").addEventListener("click", function () {
      targets = [];
      draw();
    });
  }

  syncForm();
  if (statusBox.dataset.previewReady === "true") loadPreview();
  if (needsPolling({ status: lastStatus, preview_ready: statusBox.dataset.previewReady === "true" })) {
    window.setTimeout(poll, POLL_MS);
  }
})();
