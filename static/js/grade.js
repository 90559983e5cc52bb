/*
 * SpermGrade grading page (plain JavaScript, no build step).
 *
 * Flow: POST /api/clips/next/ (it leases, so under CSRF) returns the current clip and
 * the ones to preload. Each clip's mp4 is fetched whole as a blob and played from an
 * object URL, so looping, seeking and frame stepping never wait on the network. A
 * grade goes into an outbox kept in localStorage and the page moves on to the next
 * preloaded clip at once; the outbox is delivered in order, one item at a time,
 * retried with backoff while the network or server is away (the pending count is
 * shown), and survives a reload: grading goes on offline through the preloaded
 * clips, and each grade lands exactly once (the server refuses a second vote on a
 * clip). The vote just confirmed can be changed (PATCH change_url) until the
 * server's undo window closes. Closing the tab hands its clips back (sendBeacon).
 *
 * Blind grading: nothing here asks for or shows other experts' votes; a "panel"
 * object is shown only if the server puts it in the answer to this expert's vote.
 *
 * An ES module (no bundler): grade/net.js (HTTP and retries), grade/outbox.js,
 * grade/player.js (playback controls), grade/reveal.js, grade/undo.js (changing
 * the last vote) and grade/keys.js (the keyboard) are loaded beside it.
 */
import { createApi, createRetrier, csrfToken, fetchVideo } from "./grade/net.js";
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
  const QUEUE_COUNT = 3; // the clip on screen and two preloaded: offline grading goes on

  // One id per browser tab (kept across reloads): the server hands this tab back the
  // clips it already leased to it, so the preloaded clip becomes the current one.
  // The id is taken out of sessionStorage while the page lives and put back on
  // pagehide: a duplicated tab (which copies sessionStorage) gets an id of its own.
  const TAB_KEY = "spermgrade.tab";

  function tabId() {
    let id = null;
    try {
      id = window.sessionStorage.getItem(TAB_KEY);
      window.sessionStorage.removeItem(TAB_KEY);
    } catch (err) {
      id = null;
    }
    return id || newKey();
  }

  const tab = tabId();
  const config = {
    tab,
    nextUrl: root.dataset.nextUrl + "?tab=" + encodeURIComponent(tab),
    releaseUrl: root.dataset.releaseUrl,
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
    doneText: byId("done-text"),
    doneElsewhere: byId("done-elsewhere"),
    pending: byId("pending"),
    checkAgain: byId("btn-check-again"),
  };

  const state = {
    current: null, // the clip on screen (API dict)
    ahead: [], // the clips after it, downloading in the background
    ready: false, // the current clip's video has a frame to show
    shownAt: 0, // performance.now() when the current clip became visible
    busy: false, // an outbox item is being sent (grading goes on meanwhile)
    heldElsewhere: 0, // clips this expert holds in other tabs (from the server)
    progress: null, // the server's last {graded, total}
    last: null, // {id, clip, grade, changeUrl, deadline}: the vote that can be changed
    changeMode: false, // the next grade key changes the last vote
    waitingChange: null, // {key, clip, from, grade}: a change of a grade still on its way
    clockOffsetMs: 0, // server clock minus this browser's clock
    epoch: 0, // counts settled votes; a queue answer from an older epoch is stale
    settled: [], // ids of the last few clips graded here (newest last)
    blobs: new Map(), // clip id -> Promise<object URL>
    errorSource: "", // what the error box is about (see showError)
  };

  // Grades not yet confirmed by the server (see grade/outbox.js).
  const outboxKey = "spermgrade.outbox." + config.user;
  const outbox = createOutbox(outboxKey);
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
  // Grades of this page still in the outbox: not counted by the server yet.
  function pendingCreates() {
    return outbox.read().filter((item) => item.kind === "create");
  }

  function showProgress(progress) {
    if (progress && typeof progress.graded === "number") state.progress = progress;
    progress = state.progress;
    if (!progress) return;
    const graded = progress.graded + pendingCreates().length;
    const total = typeof progress.total === "number" ? progress.total : graded;
    ui.progressText.textContent =
      graded.toLocaleString("en-US") + " graded of " + total.toLocaleString("en-US");
    document.title = graded + "/" + total + " graded · SpermGrade";
    const share = total > 0 ? Math.min(1, graded / total) : 0;
    ui.progressFill.style.width = (share * 100).toFixed(1) + "%";
    if (!ui.done.hidden) renderDoneText();
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

  // Free the downloaded videos of clips that are neither on screen nor ahead.
  function forgetOtherVideos() {
    const keep = new Set(state.ahead.map((clip) => clip.id));
    if (state.current) keep.add(state.current.id);
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
    state.ahead = [];
    forgetOtherVideos();
    root.classList.add("is-done");
    ui.done.hidden = false;
    renderDoneText();
    setStatus("");
  }

  // The finish screen's sentence, from the same figures as the counter.
  function renderDoneText() {
    const progress = state.progress;
    const graded = progress ? progress.graded + pendingCreates().length : 0;
    const left = progress ? Math.max(0, progress.total - graded) : 0;
    ui.doneText.textContent = left
      ? "Nothing else needs your grade right now (" + graded + " graded of " +
        progress.total + "). The rest come later: clips still being graded by others, " +
        "clips shown again after a while, and clips from new recordings."
      : "You have graded every clip that needs your grade right now. Thank you!";
    const held = state.heldElsewhere;
    ui.doneElsewhere.hidden = !held;
    ui.doneElsewhere.textContent = held
      ? held + (held === 1 ? " clip is" : " clips are") + " open in your other tabs or " +
        "windows. Grade them there, or close those tabs to bring them here."
      : "";
  }

  // ------------------------------------------------------------------- queue
  let queueRequest = null;

  // Ask the server which clips come next; coalesces overlapping calls.
  function refreshQueue() {
    if (queueRequest) {
      queueRequest.again = true;
      return queueRequest.promise;
    }
    const request = { again: true, count: QUEUE_COUNT };
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
  // already (or waits in the outbox), unless `final` (then it is as if nothing
  // were left).
  function applyQueue(data, final) {
    const offered = Array.isArray(data.clips) ? data.clips : [];
    const waiting = new Set(pendingCreates().map((item) => item.clip));
    const clips = offered.filter(
      (clip) => state.settled.indexOf(clip.id) === -1 && !waiting.has(clip.id)
    );
    if (!clips.length && offered.some((clip) => waiting.has(clip.id))) {
      // Only clips whose grades are still on their way: not done, just waiting
      // (the drain asks again once they are sent).
      showProgress(data.progress);
      if (!state.current) clearClip("Sending your grades…");
      return true;
    }
    if (offered.length && !clips.length && !final) return false;
    state.heldElsewhere = Number(data.held_elsewhere) || 0;
    showProgress(data.progress);
    if (!state.current) {
      if (!clips.length) {
        showDone();
        return true;
      }
      showClip(clips[0]);
    }
    const current = state.current;
    state.ahead = clips.filter((clip) => clip.id !== current.id);
    // Preload; a failure is retried when the clip is shown.
    state.ahead.forEach((clip) => videoUrl(clip).catch(() => {}));
    forgetOtherVideos();
    return true;
  }

  // Once `clipId` is graded: show the next preloaded clip at once (the grade is
  // on its way), then ask the server for more.
  function advance(clipId) {
    if (!state.current || state.current.id !== clipId) return;
    state.ahead = state.ahead.filter((clip) => clip.id !== clipId);
    const next = state.ahead.shift() || null;
    if (next) {
      showClip(next);
    } else {
      const waiting = pendingCreates().length;
      clearClip(
        waiting && !navigator.onLine
          ? "You are offline. " + waiting + " grade" + (waiting === 1 ? " waits" : "s wait") +
            " to be sent; the next clip loads when the connection is back."
          : "Loading the next clip…"
      );
    }
    refreshQueue();
  }

  // ------------------------------------------------------------------ voting
  function secondsOnCurrent() {
    if (!state.shownAt) return 0;
    const seconds = (performance.now() - state.shownAt) / 1000;
    return Math.max(0, Math.round(seconds * 100) / 100);
  }

  function setBusy(busy) {
    state.busy = busy;
    renderUndo();
    renderPending();
  }

  // The buttons are never `disabled` (a disabled button drops the keyboard focus
  // to the page); aria-disabled says when a grade would not be taken.
  function gradingOpen() {
    return Boolean(state.current && state.ready && !state.changeMode);
  }

  function renderGradeButtons() {
    const open = gradingOpen();
    ui.gradeButtons.forEach((button) => {
      button.setAttribute("aria-disabled", String(!open));
    });
    // While a change is pending, grade keys and clicks go to the undo box instead.
    ui.grades.classList.toggle("is-muted", state.changeMode);
  }

  function renderPending() {
    const waiting = outbox.read().filter((item) => locks || item.tab === config.tab).length;
    ui.pending.hidden = !waiting;
    ui.pending.textContent = waiting
      ? waiting + (waiting === 1 ? " grade waits" : " grades wait") + " to be sent" +
        (navigator.onLine ? "…" : " (offline: they go out when the connection is back).")
      : "";
  }

  function onGrade(grade) {
    if (state.changeMode) {
      changeLast(grade);
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
      tab: config.tab,
      method: "POST",
      url: config.votesUrl,
      clip: clip.id,
      grade,
      body: { clip: clip.id, grade, seconds_spent: secondsOnCurrent() },
      queuedAt: Date.now(),
      attempts: 0,
    };
    outbox.push(item);
    rememberSettled(clip.id);
    state.epoch += 1;
    showProgress(null);
    renderPending();
    advance(clip.id);
    drain();
  }

  // Deliver the outbox in order, one item at a time (a grade queued offline waits
  // behind the ones before it). Where the browser has Web Locks, one tab of the
  // expert at a time delivers every tab's items (a closed tab's grades too, and
  // never the same item twice); without them each tab delivers its own.
  let draining = false;
  let drainAgain = false;
  const locks = navigator.locks && navigator.locks.request ? navigator.locks : null;

  function nextItem() {
    const items = outbox.read();
    return locks ? items[0] : items.find((other) => other.tab === config.tab);
  }

  async function deliverAll() {
    for (;;) {
      const item = nextItem();
      if (!item) break;
      if (item.kind === "change") await sendChange(item);
      else await sendCreate(item);
    }
  }

  async function drain() {
    if (draining) {
      drainAgain = true;
      return;
    }
    draining = true;
    try {
      do {
        drainAgain = false;
        if (locks) await locks.request("spermgrade.outbox." + config.user, deliverAll);
        else await deliverAll();
      } while (drainAgain);
    } finally {
      draining = false;
      renderPending();
      showProgress(null);
      // Everything offered was waiting here: ask again now that it is sent.
      if (!state.current && ui.done.hidden) refreshQueue();
    }
  }

  // Send one outbox item until the server answers (retrying with the item's
  // attempt count kept in the outbox), then take it out of the outbox.
  async function deliver(item, unsavedMessage) {
    setBusy(true);
    const result = await persist(
      unsavedMessage,
      () => api(item.method, item.url, item.body),
      (failures) => {
        item.attempts = failures;
        outbox.update(item);
        renderPending();
      }
    );
    outbox.remove(item);
    setBusy(false);
    return result;
  }

  async function sendCreate(item) {
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
      setStatus(
        "Saved: clip " + label(item.clip) + " graded " + (vote.grade || item.grade) + "." +
          (state.changeMode ? " Choose its new grade (Esc cancels)." : ""),
        "ok"
      );
      renderPanel(ui.reveal, vote.panel, item.clip);
      advance(item.clip);
      return;
    }
    const error = result.error;
    showProgress(null);
    forgetWaiting(item);
    if (error.status === 409) {
      // Already graded (e.g. a retried send whose first answer was lost), or no
      // longer wanted: the server says which.
      setStatus(
        error.message ? "Clip " + label(item.clip) + ": " + error.message
          : "Clip " + label(item.clip) + " already had your grade; it was kept.",
        "warn"
      );
      advance(item.clip);
      refreshQueue(); // the counter's figures from the server again
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
    drain: () => drain(),
    setBusy,
    setStatus,
    showError,
    hideError,
    showProgress,
    renderGradeButtons,
  });
  const { rememberLast, forgetWaiting, renderUndo, enterChangeMode, exitChangeMode } = undo;
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
      button.addEventListener("click", (event) => {
        if (button.getAttribute("aria-disabled") === "true" && !state.changeMode) return;
        if (event.detail > 1) return; // the second click of a double click
        onGrade(button.dataset.grade);
      });
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
    window.addEventListener("online", renderPending);
    window.addEventListener("offline", renderPending);
    // A closing tab hands its clips back at once, so the counter and the other
    // tabs' queues agree; grades still in the outbox land later all the same.
    window.addEventListener("pagehide", (event) => {
      try {
        window.sessionStorage.setItem(TAB_KEY, config.tab); // for a reload
      } catch (err) {
        // no sessionStorage: the reloaded page gets a new id
      }
      // Kept in the back/forward cache, the page keeps its clips.
      if (event.persisted || !navigator.sendBeacon || !config.releaseUrl) return;
      // Only leases granted up to now (server time, plus 1 s: the Date header
      // that set the offset has whole seconds, so the estimate runs up to 1 s
      // early): a reload's new grant is kept even if this beacon arrives after it.
      const before = new Date(Date.now() + state.clockOffsetMs + 1000).toISOString();
      const form = new URLSearchParams({
        tab: config.tab,
        before,
        csrfmiddlewaretoken: csrfToken(),
      });
      navigator.sendBeacon(config.releaseUrl, form);
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) refreshQueue();
    });
    // Another tab queued or delivered grades: deliver and recount here too.
    window.addEventListener("storage", (event) => {
      if (event.key !== outboxKey) return;
      renderPending();
      showProgress(null);
      if (locks) drain();
    });
    window.addEventListener("beforeunload", (event) => {
      if (outbox.read().some((item) => item.tab === config.tab)) {
        // The grade is kept in this browser and sent on the next visit, but say so.
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  async function start() {
    bind();
    undo.restore();
    renderUndo();
    renderGradeButtons();
    // Grades left unconfirmed by an earlier visit go first, in order: this tab
    // takes them over.
    const pending = outbox.read();
    if (pending.length) {
      // Without Web Locks each tab delivers its own items: take these over.
      if (!locks) outbox.write(pending.map((item) => ({ ...item, tab: config.tab })));
      setStatus("Sending " + pending.length + " unsaved grade(s) from your last visit…");
    }
    renderPending();
    const sent = drain();
    await refreshQueue();
    await sent;
  }

  start();
})();
