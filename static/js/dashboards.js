/*
 * Draws every figure of a dashboard page: each <div data-figure="name"> gets the
 * plotly figure held in <script id="name" type="application/json"> (built on the
 * server by dashboards/figures.py). plotly.js is served from our static files.
 */
document.querySelectorAll("[data-figure]").forEach((node) => {
  const source = document.getElementById(node.dataset.figure);
  if (!source || !window.Plotly) return;
  const figure = JSON.parse(source.textContent);
  window.Plotly.newPlot(node, figure.data, figure.layout, {
    displaylogo: false,
    responsive: true,
  });
});
