/*
 * The panel's grade distribution, drawn only after the expert's own vote and only
 * when the server sends it (the admin setting "reveal panel after vote").
 */

import { label } from "./label.js";

const GRADES = ["A", "B", "C", "D", "E"];

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Draws `panel` ({probs} or {counts}, optional n_votes) into `container`, or hides
// the container when there is nothing valid to draw.
export function renderPanel(container, panel, clipId) {
  container.replaceChildren();
  const counts = panel && Array.isArray(panel.counts) ? panel.counts.map(Number) : null;
  let probs = panel && Array.isArray(panel.probs) ? panel.probs.map(Number) : null;
  if (!probs && counts) {
    const total = counts.reduce((a, b) => a + b, 0);
    probs = counts.map((c) => (total ? c / total : 0));
  }
  if (!probs || probs.length !== GRADES.length) {
    container.hidden = true;
    return;
  }
  let nVotes = null;
  if (panel.n_votes != null) nVotes = panel.n_votes;
  else if (counts) nVotes = counts.reduce((a, b) => a + b, 0);
  const title = element(
    "p",
    "reveal__title",
    "Panel grades for clip " + label(clipId) + (nVotes != null ? " (" + nVotes + " votes)" : "") +
      ", shown after your vote (which is final: it can no longer be changed)"
  );
  const bars = element("div", "reveal__bars");
  GRADES.forEach((grade, i) => {
    const bar = element("span", "reveal__bar");
    const fill = element("span");
    fill.style.width = (Math.max(0, Math.min(1, probs[i])) * 100).toFixed(1) + "%";
    bar.appendChild(fill);
    bars.append(element("span", "", grade), bar, element("span", "reveal__pct", Math.round(probs[i] * 100) + "%"));
  });
  container.append(title, bars);
  container.hidden = false;
}
