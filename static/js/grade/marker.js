/*
 * The target marker: a thin ring drawn over the video at the tracked sperm's
 * position in the frame on screen (from the clip's stored track, `clip.marker`,
 * never burnt into the video). Toggled by the M key and its button; the choice is
 * remembered per expert in this browser.
 *
 * The SVG lies exactly over the video element and uses the clip's pixels as its
 * viewBox with the same "contain" fit as the video, so a clip pixel maps to the
 * same screen point in both, at every zoom.
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const RING_RADIUS_SHARE = 0.09; // of the clip size: a 150 px clip gets a 13.5 px ring

export function createMarker({ svg, video, button, clip, frameIndex, storageKey }) {
  const ring = document.createElementNS(SVG_NS, "circle");
  ring.setAttribute("class", "marker__ring");
  ring.setAttribute("fill", "none");
  ring.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(ring);
  let visible = readPreference();

  function readPreference() {
    try {
      return window.localStorage.getItem(storageKey) !== "off";
    } catch (err) {
      return true;
    }
  }

  function place() {
    // Cover the video element's box (it moves and grows with zoom).
    svg.style.left = video.offsetLeft + "px";
    svg.style.top = video.offsetTop + "px";
    svg.style.width = video.offsetWidth + "px";
    svg.style.height = video.offsetHeight + "px";
  }

  function render() {
    const current = clip();
    const points = current && Array.isArray(current.marker) ? current.marker : null;
    button.setAttribute("aria-pressed", String(visible));
    button.disabled = !points;
    button.title = points ? "Show or hide the ring on the graded sperm (M)"
      : "This clip has no stored track to mark";
    if (!points || !visible) {
      svg.setAttribute("hidden", ""); // an SVG element has no .hidden property
      svg.removeAttribute("data-frame");
      return;
    }
    const size = current.size_px || 150;
    const index = Math.min(points.length - 1, Math.max(0, frameIndex()));
    const [x, y] = points[index];
    svg.setAttribute("viewBox", "0 0 " + size + " " + size);
    ring.setAttribute("cx", String(x));
    ring.setAttribute("cy", String(y));
    ring.setAttribute("r", String(Math.round(size * RING_RADIUS_SHARE * 10) / 10));
    svg.dataset.frame = String(index);
    place();
    svg.removeAttribute("hidden");
  }

  function setVisible(value) {
    visible = Boolean(value);
    try {
      window.localStorage.setItem(storageKey, visible ? "on" : "off");
    } catch (err) {
      // Storage disabled: the choice holds for this page only.
    }
    render();
    return visible;
  }

  button.addEventListener("click", () => setVisible(!visible));
  window.addEventListener("resize", render);

  return {
    render,
    toggle: () => setVisible(!visible),
    get visible() {
      return visible;
    },
  };
}
