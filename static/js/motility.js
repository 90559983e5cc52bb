// Recording page: histogram of the tracks' VAP (average-path velocity) with the
// WHO thresholds the classes use, drawn by plotly.js from our own static files.
(function () {
  "use strict";
  var box = document.getElementById("motility-chart");
  var source = document.getElementById("motility-data");
  if (!box || !source || typeof Plotly === "undefined") return;
  var m = JSON.parse(source.textContent);
  var t = m.thresholds || {};
  var unit = m.unit === "um/s" ? "µm/s" : m.unit;
  var lines = [
    { x: t.immotile_vap, text: "immotile below " + t.immotile_vap + " " + unit },
    { x: t.progressive_vap, text: "progressive from " + t.progressive_vap + " " + unit + " (with STR ≥ " + t.progressive_str + ")" },
  ].filter(function (line) { return typeof line.x === "number"; });
  Plotly.newPlot(
    box,
    [{ type: "histogram", x: m.vap, name: "tracks", marker: { color: "#2f7f8a" }, nbinsx: 30 }],
    {
      title: { text: "VAP of " + m.n_tracks + " tracks" },
      xaxis: { title: { text: "VAP (" + unit + ")" }, rangemode: "tozero" },
      yaxis: { title: { text: "tracks" } },
      margin: { l: 60, r: 20, t: 50, b: 50 },
      bargap: 0.05,
      shapes: lines.map(function (line) {
        return { type: "line", x0: line.x, x1: line.x, y0: 0, y1: 1, yref: "paper", line: { dash: "dash", color: "#b42318" } };
      }),
      annotations: lines.map(function (line, i) {
        return { x: line.x, y: 1 - 0.08 * i, yref: "paper", text: line.text, showarrow: false, xanchor: "left", font: { size: 11 } };
      }),
    },
    { displaylogo: false, responsive: true }
  );
})();
