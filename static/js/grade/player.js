/*
 * The clip player: loop, play/pause, frame step, speed 0.25×–2×, zoom, and the
 * frame counter. `clip()` returns the clip on screen (API dict) and `isReady()`
 * whether its video has a frame to show.
 */

export const SPEEDS = [0.25, 0.5, 1, 1.5, 2];
export const ZOOMS = [1, 1.5, 2, 3, 4];

export function createPlayer({ ui, clip, isReady, onFrame }) {
  const video = ui.video;
  let speed = 1;
  let zoomIndex = 0;

  function currentFrameIndex() {
    const current = clip();
    if (!current || !current.fps) return 0;
    const n = current.n_frames || Math.max(1, Math.round(video.duration * current.fps));
    return Math.min(n - 1, Math.max(0, Math.floor(video.currentTime * current.fps + 1e-3)));
  }

  function renderFrame() {
    const current = clip();
    if (!current || !isReady()) return;
    const n = current.n_frames || "?";
    ui.frame.textContent = "Frame " + (currentFrameIndex() + 1) + " / " + n;
    if (onFrame) onFrame();
  }

  function renderPlayState() {
    const paused = video.paused;
    ui.play.textContent = paused ? "Play" : "Pause";
    ui.play.setAttribute("aria-pressed", String(!paused));
    ui.paused.hidden = !paused || !isReady();
  }

  function play() {
    const playing = video.play();
    if (playing) playing.catch(() => {});
  }

  function togglePlay() {
    if (!isReady()) return;
    if (video.paused) play();
    else video.pause();
  }

  function step(delta) {
    const current = clip();
    if (!current || !isReady()) return;
    video.pause();
    const fps = current.fps || 15;
    const n = current.n_frames || Math.max(1, Math.round(video.duration * fps));
    const target = (currentFrameIndex() + delta + n) % n;
    // Aim at the middle of the frame so rounding never lands on its neighbour.
    const limit = Number.isFinite(video.duration) ? video.duration - 0.001 : Infinity;
    video.currentTime = Math.max(0, Math.min((target + 0.5) / fps, limit));
  }

  // Also re-applies the speed after a new source (loading resets playbackRate).
  function setSpeed(value) {
    speed = value;
    video.defaultPlaybackRate = value;
    video.playbackRate = value;
    ui.speedButtons.forEach((button) => {
      button.setAttribute("aria-pressed", String(Number(button.dataset.speed) === value));
    });
  }

  function speedBy(delta) {
    const index = SPEEDS.indexOf(speed);
    const next = Math.max(0, Math.min(SPEEDS.length - 1, (index === -1 ? 2 : index) + delta));
    setSpeed(SPEEDS[next]);
    return SPEEDS[next];
  }

  function setZoom(index) {
    zoomIndex = Math.max(0, Math.min(ZOOMS.length - 1, index));
    const scroller = ui.scroller;
    const centerX = (scroller.scrollLeft + scroller.clientWidth / 2) / Math.max(1, scroller.scrollWidth);
    const centerY = (scroller.scrollTop + scroller.clientHeight / 2) / Math.max(1, scroller.scrollHeight);
    const zoom = ZOOMS[zoomIndex];
    // The video keeps object-fit: contain, so scaling its box scales the picture.
    video.style.width = zoom === 1 ? "" : Math.round(scroller.clientWidth * zoom) + "px";
    video.style.height = zoom === 1 ? "" : Math.round(scroller.clientHeight * zoom) + "px";
    ui.zoomValue.textContent = zoom + "×";
    ui.zoomOut.disabled = zoomIndex === 0;
    ui.zoomIn.disabled = zoomIndex === ZOOMS.length - 1;
    scroller.scrollLeft = centerX * scroller.scrollWidth - scroller.clientWidth / 2;
    scroller.scrollTop = centerY * scroller.scrollHeight - scroller.clientHeight / 2;
    if (onFrame) onFrame();
  }

  function zoomBy(delta) {
    setZoom(zoomIndex + delta);
  }

  function bind() {
    if (typeof video.requestVideoFrameCallback === "function") {
      const onFrame = () => {
        renderFrame();
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
    video.addEventListener("timeupdate", renderFrame);
    video.addEventListener("seeked", renderFrame);
    video.addEventListener("play", renderPlayState);
    video.addEventListener("pause", renderPlayState);
    ui.play.addEventListener("click", togglePlay);
    ui.stepBack.addEventListener("click", () => step(-1));
    ui.stepForward.addEventListener("click", () => step(1));
    ui.speedButtons.forEach((button) => {
      button.addEventListener("click", () => setSpeed(Number(button.dataset.speed)));
    });
    ui.zoomIn.addEventListener("click", () => zoomBy(1));
    ui.zoomOut.addEventListener("click", () => zoomBy(-1));
    window.addEventListener("resize", () => setZoom(zoomIndex));
    // The zoom changes the video's box: whatever covers it follows.
    video.addEventListener("resize", () => onFrame && onFrame());
    setSpeed(1);
    setZoom(0);
  }

  return {
    bind,
    play,
    togglePlay,
    step,
    setSpeed,
    speedBy,
    setZoom,
    zoomBy,
    renderFrame,
    renderPlayState,
    frameIndex: currentFrameIndex,
    get speed() {
      return speed;
    },
  };
}
