/*
 * Draws every figure of a dashboard page: each <div data-figure="name"> gets the
 * plotly figure held in <script id="name" type="application/json"> (built on the
 * server by dashboards/figures.py). plotly.js is served from our static files.
 *
 * A figure's title becomes a heading above its chart: plotly draws titles on one
 * line and cuts them off at the chart's width, a heading wraps.
 */
document.querySelectorAll("[data-figure]").forEach((node) => {
  const source = document.getElementById(node.dataset.figure);
  if (!source || !window.Plotly) return;
  const figure = JSON.parse(source.textContent);
  const layout = { ...figure.layout };
  const title = layout.title && layout.title.text;
  if (title) {
    const card = node.closest("section");
    const level = card && card.querySelector("h1, h2") ? "h3" : "h2";
    const heading = document.createElement(level);
    heading.className = "chart__title";
    heading.textContent = title;
    node.before(heading);
    delete layout.title;
    layout.margin = { ...(layout.margin || {}), t: 16 };
  }
  window.Plotly.newPlot(node, figure.data, layout, {
    displaylogo: false,
    responsive: true,
  });
});
