/*
 * SpermGrade grading page (plain JavaScript, no build step).
 *
 * Flow: POST /api/clips/next/ (it leases, so under CSRF) returns the current clip and one to preload. Each clip's
 * mp4 is fetched whole as a blob and played from an object URL, so looping, seeking
 * and frame stepping never wait on the network. A grade goes into an outbox kept in
 * localStorage, is POSTed, and only when the server confirms does the page move on;
 * failed sends are retried with backoff and shown, and survive a reload. The vote just
 * given can be changed (PATCH change_url) until the server's undo window closes.
 *
 * Blind grading: nothing here asks for or shows other experts' votes; a "panel"
 * object is shown only if the server puts it in the answer to this expert's vote.
 *
 * An ES module (no bundler): grade/net.js (HTTP and retries), grade/outbox.js,
 * grade/player.js (playback controls), grade/reveal.js, grade/undo.js (changing
 * the last vote) and grade/keys.js (the keyboard) are loaded beside it.
 */
import { createApi, createRetrier, fetchVideo } from "./grade/net.js";
import { createOutbox, newKey } from "./grade/outbox.js";
import { createPlayer } from "./grade/player.js";
import { createMarker } from "./grade/marker.js";
import { createKeyHandler, isTyping } from "./grade/keys.js";
import { label } from "./grade/label.js";
import { renderPanel } from "./grade/reveal.js";
import { createUndo } from "./grade/undo.js";

(function () {
  const root = document.getElementById("grader");
  if (!root) return;

  const MAX_QUEUE_COUNT = 5; // the API's upper limit on clips per /api/clips/next/

  // One id per browser tab (kept across reloads): the server hands this tab back the
  // clips it already leased to it, so the preloaded clip becomes the current one.
  function tabId() {
    try {
      let id = window.sessionStorage.getItem("spermgrade.tab");
      if (!id) {
        id = newKey();
        window.sessionStorage.setItem("spermgrade.tab", id);
      }
      return id;
    } catch (err) {
      return newKey();
    }
  }

  const config = {
    nextUrl: root.dataset.nextUrl + "?tab=" + encodeURIComponent(tabId()),
    votesUrl: root.dataset.votesUrl,
    user: root.dataset.user || "anonymous",
    undoSeconds: Number(root.dataset.undoSeconds || 0),
    loginUrl: root.dataset.loginUrl || "/login/",
  };

  const byId = (id) => document.getElementById(id);
  const ui = {
    video: byId("video"),
    stage: byId("stage"),
    scroller: byId("stage-scroller"),
    overlay: byId("stage-overlay"),
    paused: byId("stage-paused"),
    clipId: byId("clip-id"),
    synthetic: byId("clip-synthetic"),
    info: byId("clip-info"),
    play: byId("btn-play"),
    stepBack: byId("btn-step-back"),
    stepForward: byId("btn-step-forward"),
    frame: byId("frame-counter"),
    speedButtons: Array.from(document.querySelectorAll("#speed-buttons button")),
    zoomIn: byId("btn-zoom-in"),
    zoomOut: byId("btn-zoom-out"),
    zoomValue: byId("zoom-value"),
    progressText: byId("progress-text"),
    progressFill: byId("progress-fill"),
    grades: document.querySelector(".grades"),
    gradeButtons: Array.from(document.querySelectorAll("#grade-buttons .grade-btn")),
    status: byId("status"),
    error: byId("error"),
    errorText: byId("error-text"),
    retryNow: byId("btn-retry-now"),
    errorLogin: byId("error-login"),
    undo: byId("undo"),
    undoText: byId("undo-text"),
    undoButtons: Array.from(document.querySelectorAll("#undo-buttons button")),
    reveal: byId("reveal"),
    done: byId("done"),
    checkAgain: byId("btn-check-again"),
  };

  const state = {
    current: null, // the clip on screen (API dict)
    preload: null, // the clip after it, downloading in the background
    ready: false, // the current clip's video has a frame to show
    shownAt: 0, // performance.now() when the current clip became visible
    busy: false, // a vote or change is being sent: grading waits
    last: null, // {id, clip, grade, changeUrl, deadline}: the vote that can be changed
    changeMode: false, // the next grade key changes the last vote
    clockOffsetMs: 0, // server clock minus this browser's clock
    epoch: 0, // counts settled votes; a queue answer from an older epoch is stale
    settled: [], // ids of the last few clips graded here (newest last)
    blobs: new Map(), // clip id -> Promise<object URL>
    errorSource: "", // what the error box is about (see showError)
  };

  // Grades not yet confirmed by the server (see grade/outbox.js).
  const outbox = createOutbox("spermgrade.outbox." + config.user);
  const api = createApi({
    loginPath: config.loginUrl.split("?")[0],
    onServerDate: (serverNow) => {
      state.clockOffsetMs = serverNow - Date.now();
    },
  });
  // Temporary failures are retried with growing pauses, shown in the error box.
  const retrier = createRetrier({
    onRetry: (what, err, waitMs, failures) => showRetry(what, err, waitMs, failures),
    onRecovered: () => hideError(),
  });
  const persist = retrier.persist;
  const player = createPlayer({
    ui,
    clip: () => state.current,
    isReady: () => state.ready,
    onFrame: () => marker.render(),
  });
  const marker = createMarker({
    svg: byId("marker"),
    video: ui.video,
    button: byId("btn-marker"),
    clip: () => (state.ready ? state.current : null),
    frameIndex: () => player.frameIndex(),
    storageKey: "spermgrade.marker." + config.user,
  });

  // -------------------------------------------------------- status & errors
  let retryTimer = null;

  function setStatus(text, tone) {
    ui.status.textContent = text || "";
    ui.status.className = "status" + (tone ? " status--" + tone : "");
  }

  // `source` "clip" marks an error about the clip on screen: the next clip clears it.
  // Other errors stay until the next grade or change is saved.
  function showError(text, options) {
    clearInterval(retryTimer);
    state.errorSource = (options && options.source) || "";
    ui.errorText.textContent = text;
    ui.retryNow.hidden = !(options && options.retry);
    ui.errorLogin.hidden = !(options && options.login);
    ui.errorLogin.href = config.loginUrl;
    ui.error.hidden = false;
  }

  function hideError() {
    clearInterval(retryTimer);
    ui.error.hidden = true;
    ui.errorText.textContent = "";
  }

  function showRetry(what, err, waitMs, failures) {
    const until = Date.now() + waitMs;
    const render = () => {
      const seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      const when = seconds > 0 ? "Retrying in " + seconds + " s" : "Retrying now";
      ui.errorText.textContent =
        what + ": " + err.message + " " + when + " (attempt " + (failures + 1) + ").";
    };
    showError("", { retry: true, login: err.status === 401 || err.status === 403 });
    render();
    retryTimer = setInterval(render, 500);
  }

  // ---------------------------------------------------------------- progress
  function showProgress(progress) {
    if (!progress || typeof progress.graded !== "number") return;
    const graded = progress.graded;
    const total = typeof progress.total === "number" ? progress.total : graded;
    ui.progressText.textContent =
      graded.toLocaleString("en-US") + " graded of " + total.toLocaleString("en-US");
    document.title = graded + "/" + total + " graded · SpermGrade";
    const share = total > 0 ? Math.min(1, graded / total) : 0;
    ui.progressFill.style.width = (share * 100).toFixed(1) + "%";
  }

  // ------------------------------------------------------------------ videos
  function videoUrl(clip) {
    let entry = state.blobs.get(clip.id);
    if (!entry) {
      entry = fetchVideo(clip.video_url).then((blob) => URL.createObjectURL(blob));
      state.blobs.set(clip.id, entry);
      entry.catch(() => {
        if (state.blobs.get(clip.id) === entry) state.blobs.delete(clip.id);
      });
    }
    return entry;
  }

  // Free the downloaded videos of clips that are neither on screen nor next.
  function forgetOtherVideos() {
    const keep = new Set();
    if (state.current) keep.add(state.current.id);
    if (state.preload) keep.add(state.preload.id);
    for (const [id, entry] of state.blobs) {
      if (keep.has(id)) continue;
      state.blobs.delete(id);
      entry.then((url) => URL.revokeObjectURL(url)).catch(() => {});
    }
  }

  function overlay(text) {
    ui.overlay.textContent = text;
    ui.overlay.hidden = !text;
  }

  async function showClip(clip) {
    state.current = clip;
    state.ready = false;
    ui.clipId.textContent = label(clip.id);
    ui.synthetic.hidden = !clip.synthetic;
    ui.info.textContent = [
      clip.n_frames ? clip.n_frames + " frames" : "",
      clip.fps ? formatNumber(clip.fps) + " fps" : "",
      clip.size_px ? clip.size_px + " px" : "",
    ]
      .filter(Boolean)
      .join(" · ");
    ui.frame.textContent = "Frame –";
    ui.done.hidden = true;
    root.classList.remove("is-done");
    renderGradeButtons();
    marker.render();
    overlay("Loading clip…");

    const result = await persist(
      "The video of clip " + label(clip.id),
      () => videoUrl(clip),
      null,
      () => state.current !== clip
    );
    if (state.current !== clip) return;
    if (!result.ok) {
      overlay("");
      ui.overlay.hidden = false;
      ui.overlay.textContent = result.error ? result.error.message : "The clip could not be loaded.";
      showError(
        "Clip " + label(clip.id) + " cannot be shown: " + (result.error ? result.error.message : "") +
          " Reload the page to try again; an administrator may need to re-encode it.",
        { source: "clip" }
      );
      return;
    }
    ui.video.src = result.data;
    player.setSpeed(player.speed); // loading a source resets the rate
    player.play();
    forgetOtherVideos();
  }

  function clearClip(message) {
    state.current = null;
    state.ready = false;
    ui.video.pause();
    ui.video.removeAttribute("src");
    ui.video.load();
    ui.clipId.textContent = "…";
    ui.synthetic.hidden = true;
    ui.info.textContent = "";
    ui.frame.textContent = "Frame –";
    marker.render();
    overlay(message);
    renderGradeButtons();
    forgetOtherVideos();
  }

  function showDone() {
    clearClip("");
    state.preload = null;
    forgetOtherVideos();
    root.classList.add("is-done");
    ui.done.hidden = false;
    setStatus("");
  }

  // ------------------------------------------------------------------- queue
  let queueRequest = null;

  // Ask the server which clips come next; coalesces overlapping calls.
  function refreshQueue() {
    if (queueRequest) {
      queueRequest.again = true;
      return queueRequest.promise;
    }
    const request = { again: true, count: 2 };
    request.promise = (async () => {
      try {
        while (request.again) {
          request.again = false;
          const epoch = state.epoch;
          const url = config.nextUrl + "&count=" + request.count;
          const result = await persist("Loading your next clip", () => api("POST", url));
          if (result.ok && epoch !== state.epoch) {
            // A vote landed while this answer was on its way: it may offer the clip
            // just graded and an old count. Ask again.
            request.again = true;
          } else if (result.ok) {
            if (!applyQueue(result.data, request.count >= MAX_QUEUE_COUNT)) {
              // Everything offered was graded here already: ask for a longer list.
              request.count = Math.min(MAX_QUEUE_COUNT, request.count + 2);
              request.again = true;
            }
          } else if (result.error) {
            if (!state.current) overlay("No clip could be loaded.");
            showError("Your next clip could not be loaded: " + result.error.message, {});
          }
        }
      } finally {
        queueRequest = null;
      }
    })();
    queueRequest = request;
    return request.promise;
  }

  // Never offer again a clip graded moments ago on this page, whatever the queue
  // says (a lease renewed by a request that crossed the vote can bring it back).
  // Hidden repeats come many clips later, far beyond this short memory.
  const SETTLED_MEMORY = 5;

  function rememberSettled(clipId) {
    state.settled = state.settled.filter((id) => id !== clipId).concat([clipId]);
    if (state.settled.length > SETTLED_MEMORY) state.settled.shift();
  }

  // Returns false, changing nothing, when every clip offered was graded here
  // already, unless `final` (then it is as if nothing were left).
  function applyQueue(data, final) {
    const offered = Array.isArray(data.clips) ? data.clips : [];
    const clips = offered.filter((clip) => state.settled.indexOf(clip.id) === -1);
    if (offered.length && !clips.length && !final) return false;
    showProgress(data.progress);
    if (!state.current) {
      if (!clips.length) {
        showDone();
        return true;
      }
      showClip(clips[0]);
    }
    const current = state.current;
    const next = clips.find((clip) => clip.id !== current.id) || null;
    if (!next) {
      state.preload = null;
    } else if (!state.preload || state.preload.id !== next.id) {
      state.preload = next;
      videoUrl(next).catch(() => {}); // preload; a failure is retried when it is shown
    }
    forgetOtherVideos();
    return true;
  }

  // After a confirmed vote on `clipId`: show the preloaded clip at once, then ask
  // the server for the one after it.
  function advance(clipId) {
    if (!state.current || state.current.id !== clipId) return;
    const next = state.preload && state.preload.id !== clipId ? state.preload : null;
    state.preload = null;
    if (next) {
      showClip(next);
    } else {
      clearClip("Loading the next clip…");
    }
    refreshQueue();
  }

  // ------------------------------------------------------------------ voting
  function secondsOnCurrent() {
    if (!state.shownAt) return 0;
    const seconds = (performance.now() - state.shownAt) / 1000;
    return Math.max(0, Math.round(seconds * 100) / 100);
  }

  function setBusy(busy, grade) {
    state.busy = busy;
    ui.gradeButtons.forEach((button) => {
      button.classList.toggle("is-sending", Boolean(busy && grade && button.dataset.grade === grade));
    });
    renderGradeButtons();
    renderUndo();
  }

  function renderGradeButtons() {
    // While a change is pending, grade keys and clicks go to the undo box instead.
    const enabled = Boolean(state.current && state.ready && !state.busy && !state.changeMode);
    ui.gradeButtons.forEach((button) => {
      button.disabled = !enabled;
    });
    ui.grades.classList.toggle("is-muted", state.changeMode);
  }

  function onGrade(grade) {
    if (state.changeMode) {
      changeLast(grade);
      return;
    }
    if (state.busy) {
      setStatus("Please wait: your last grade is still being sent.", "warn");
      return;
    }
    if (!state.current) return;
    if (!state.ready) {
      setStatus("The clip is still loading; grade it once it plays.", "warn");
      return;
    }
    const clip = state.current;
    const item = {
      key: newKey(),
      kind: "create",
      method: "POST",
      url: config.votesUrl,
      clip: clip.id,
      grade,
      body: { clip: clip.id, grade, seconds_spent: secondsOnCurrent() },
      queuedAt: Date.now(),
      attempts: 0,
    };
    outbox.push(item);
    sendCreate(item);
  }

  // Send one outbox item until the server answers (retrying with the item's
  // attempt count kept in the outbox), then take it out of the outbox.
  async function deliver(item, unsavedMessage) {
    const result = await persist(
      unsavedMessage,
      () => api(item.method, item.url, item.body),
      (failures) => {
        item.attempts = failures;
        outbox.update(item);
      }
    );
    outbox.remove(item);
    setBusy(false);
    return result;
  }

  async function sendCreate(item) {
    setBusy(true, item.grade);
    setStatus("Saving grade " + item.grade + " for clip " + label(item.clip) + "…");
    const result = await deliver(
      item,
      "Your grade " + item.grade + " for clip " + label(item.clip) + " is not saved yet"
    );
    state.epoch += 1;
    if (result.ok || result.error.status === 409 || result.error.status === 404) {
      rememberSettled(item.clip);
    }
    if (result.ok) {
      const vote = result.data;
      hideError();
      showProgress(vote.progress);
      rememberLast(vote, item);
      setStatus("Saved: clip " + label(item.clip) + " graded " + (vote.grade || item.grade) + ".", "ok");
      renderPanel(ui.reveal, vote.panel, item.clip);
      advance(item.clip);
      return;
    }
    const error = result.error;
    if (error.status === 409) {
      // Already graded (e.g. a retried send whose first answer was lost), or no
      // longer wanted: the server says which.
      setStatus(
        error.message ? "Clip " + label(item.clip) + ": " + error.message
          : "Clip " + label(item.clip) + " already had your grade; it was kept.",
        "warn"
      );
      advance(item.clip);
    } else if (error.status === 404) {
      showError("Clip " + label(item.clip) + " is no longer available: " + error.message + " Moving on.");
      advance(item.clip);
    } else {
      showError("Your grade for clip " + label(item.clip) + " was refused: " + error.message);
      setStatus("");
    }
  }

  // ---------------------------------------------------------------- undo
  const undo = createUndo({
    state,
    ui,
    config,
    outbox,
    deliver,
    setBusy,
    setStatus,
    showError,
    hideError,
    showProgress,
    renderGradeButtons,
  });
  const { rememberLast, renderUndo, enterChangeMode, exitChangeMode } = undo;
  const { changeLast, sendChange } = undo;

  function formatNumber(x) {
    return Number.isInteger(x) ? String(x) : x.toFixed(2).replace(/0+$/, "");
  }

  // ---------------------------------------------------------------- keyboard
  const onKeyDown = createKeyHandler({
    player,
    marker,
    onGrade,
    setStatus,
    enterChangeMode,
    exitChangeMode,
  });

  // ------------------------------------------------------------------- start
  function bind() {
    document.addEventListener("keydown", onKeyDown);
    // Space on a focused button would also "click" it on key-up; the page owns Space.
    document.addEventListener("keyup", (event) => {
      if (event.key === " " && !isTyping(event.target)) event.preventDefault();
    });

    ui.video.addEventListener("loadeddata", () => {
      if (!state.current) return;
      state.ready = true;
      state.shownAt = performance.now();
      if (state.errorSource === "clip") hideError();
      overlay("");
      renderGradeButtons();
      player.renderPlayState();
      player.renderFrame();
      marker.render();
    });
    ui.video.addEventListener("error", () => {
      if (!state.current || !ui.video.getAttribute("src")) return;
      state.ready = false;
      renderGradeButtons();
      const code = ui.video.error ? ui.video.error.code : "?";
      overlay("This browser cannot play clip " + state.current.id + " (media error " + code + ").");
      showError(
        "Clip " + label(state.current.id) + " cannot be played here (media error " + code + "). " +
          "Reload the page; if it persists, tell an administrator.",
        { source: "clip" }
      );
    });
    player.bind();

    ui.gradeButtons.forEach((button) => {
      button.addEventListener("click", () => onGrade(button.dataset.grade));
    });
    ui.undoButtons.forEach((button) => {
      button.addEventListener("click", () => {
        state.changeMode = true;
        changeLast(button.dataset.grade);
      });
    });
    ui.retryNow.addEventListener("click", () => retrier.wakeNow());
    ui.checkAgain.addEventListener("click", () => {
      setStatus("Checking for new clips…");
      refreshQueue().then(() => {
        if (!ui.done.hidden) setStatus("Still nothing to grade.");
      });
    });
    window.addEventListener("beforeunload", (event) => {
      if (state.busy) {
        // The grade is kept in this browser and sent on the next visit, but say so.
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  async function start() {
    bind();
    renderUndo();
    // Grades left unconfirmed by an earlier visit go first, in order.
    const pending = outbox.read();
    if (pending.length) {
      setStatus("Sending " + pending.length + " unsaved grade(s) from your last visit…");
    }
    for (const item of pending) {
      if (item.kind === "change") await sendChange(item);
      else await sendCreate(item);
    }
    await refreshQueue();
  }

  start();
})();
