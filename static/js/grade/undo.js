/*
 * The vote just given can be changed (PATCH change_url) until the server's undo
 * window closes: the countdown box, "change mode" (U or Backspace, then a grade key)
 * and sending the change through the outbox. The box is kept in sessionStorage,
 * so a reload while the window is open brings it back.
 */
import { label } from "./label.js";
import { newKey } from "./outbox.js";
import { renderPanel } from "./reveal.js";

// ctx: {state, ui, config, outbox, deliver, drain, setStatus, showError,
// hideError, showProgress, renderGradeButtons} from grade.js.
export function createUndo(ctx) {
  const { state, ui, config, outbox } = ctx;
  const { deliver, setStatus, showError, hideError, showProgress } = ctx;
  const renderGradeButtons = () => ctx.renderGradeButtons();
  const storageKey = "spermgrade.last." + config.user;
  let undoTimer = null;

  function save() {
    try {
      if (state.last) window.sessionStorage.setItem(storageKey, JSON.stringify(state.last));
      else window.sessionStorage.removeItem(storageKey);
    } catch (err) {
      // Storage disabled: the box lasts as long as the page.
    }
  }

  // After a reload: the last vote's box, if its window is still open.
  function restore() {
    let last = null;
    try {
      last = JSON.parse(window.sessionStorage.getItem(storageKey) || "null");
    } catch (err) {
      last = null;
    }
    if (last && last.changeUrl && Number(last.deadline) > Date.now()) {
      state.last = last;
      clearInterval(undoTimer);
      undoTimer = setInterval(renderUndo, 250);
    } else {
      state.last = null;
      save();
    }
  }

  function rememberLast(vote, item) {
    if (!vote.change_url || !vote.undo_until) {
      state.last = null;
      if (state.waitingChange && state.waitingChange.key === item.key) {
        state.waitingChange = null;
        state.changeMode = false;
        showError("Clip " + label(item.clip) + " can no longer be changed.");
      }
      renderUndo();
      return false;
    }
    const serverDeadline = Date.parse(vote.undo_until);
    let deadline = Number.isNaN(serverDeadline)
      ? Date.now() + config.undoSeconds * 1000
      : serverDeadline - state.clockOffsetMs;
    // The Date header has 1 s resolution: never promise more than the configured window.
    if (config.undoSeconds > 0) deadline = Math.min(deadline, Date.now() + config.undoSeconds * 1000);
    state.last = {
      id: vote.id,
      clip: vote.clip != null ? vote.clip : item.clip,
      grade: vote.grade || item.grade,
      changeUrl: vote.change_url,
      deadline,
    };
    save();
    clearInterval(undoTimer);
    undoTimer = setInterval(renderUndo, 250);
    const waiting = state.waitingChange;
    if (waiting && waiting.key === item.key) {
      // U was pressed while this grade was on its way: it is the vote to change.
      state.waitingChange = null;
      if (waiting.grade) {
        queueChange(state.last, waiting.grade);
        return true;
      }
      state.changeMode = true;
    }
    renderUndo();
    return false;
  }

  // The grade ``item`` did not land (refused, gone): a change waiting for it is void.
  function forgetWaiting(item) {
    const waiting = state.waitingChange;
    if (!waiting || waiting.key !== item.key) return;
    state.waitingChange = null;
    state.changeMode = false;
    if (waiting.grade) {
      showError(
        "Clip " + label(waiting.clip) + " was not changed to " + waiting.grade +
          ": its first grade was not saved."
      );
    }
    renderUndo();
  }

  // The newest grade still in the outbox (this tab's), the one U means.
  function newestWaitingCreate() {
    const creates = outbox.read().filter((item) => item.kind === "create");
    const mine = creates.filter((item) => item.tab === config.tab);
    return (mine.length ? mine : creates).pop() || null;
  }

  // A newer grade still in the outbox: U now would change the older vote in the
  // box while the expert means the clip just graded.
  function newerGradeWaiting() {
    return outbox.read().some((item) => item.kind === "create");
  }

  function changeOfLastWaiting() {
    return Boolean(
      state.last &&
        outbox.read().some((item) => item.kind === "change" && item.voteId === state.last.id)
    );
  }

  function undoSecondsLeft() {
    if (!state.last) return 0;
    return Math.max(0, Math.ceil((state.last.deadline - Date.now()) / 1000));
  }

  function formatCountdown(seconds) {
    const m = Math.floor(seconds / 60);
    const s = seconds % 60;
    return m + ":" + String(s).padStart(2, "0");
  }

  function renderUndo() {
    const waiting = state.waitingChange;
    if (waiting) {
      clearInterval(undoTimer);
      undoTimer = setInterval(renderUndo, 250);
      renderGradeButtons();
      ui.undo.hidden = false;
      ui.undo.classList.toggle("is-changing", state.changeMode);
      ui.undoText.textContent = waiting.grade
        ? "Clip " + label(waiting.clip) + " will be changed from " + waiting.from +
          " to " + waiting.grade + " once its grade is saved."
        : "Choose the new grade for clip " + label(waiting.clip) + " (now " +
          waiting.from + ", still being saved). Esc cancels.";
      ui.undoButtons.forEach((button) => {
        button.disabled = false;
        button.setAttribute("aria-current", String(button.dataset.grade === waiting.from));
      });
      return;
    }
    const left = undoSecondsLeft();
    if (!state.last || left <= 0) {
      if (state.last && !changeOfLastWaiting()) {
        state.last = null;
        save();
      }
      if (!state.last) {
        clearInterval(undoTimer);
        state.changeMode = false;
        ui.undo.hidden = true;
        ui.undo.classList.remove("is-changing");
        renderGradeButtons();
        return;
      }
    }
    const last = state.last;
    renderGradeButtons();
    ui.undo.hidden = false;
    ui.undo.classList.toggle("is-changing", state.changeMode);
    if (state.changeMode) {
      ui.undoText.textContent =
        "Choose the new grade for clip " + label(last.clip) + " (now " + last.grade + "). " +
        "Esc cancels. " + formatCountdown(left) + " left.";
    } else {
      ui.undoText.textContent =
        "Clip " + label(last.clip) + " graded " + last.grade + ". You can change it for " +
        formatCountdown(left) + ".";
    }
    ui.undoButtons.forEach((button) => {
      button.disabled = left <= 0;
      button.setAttribute("aria-current", String(button.dataset.grade === last.grade));
    });
  }

  function enterChangeMode() {
    const pending = newestWaitingCreate();
    if (pending) {
      // The grade key that follows must change this clip, never grade the next one.
      state.waitingChange = { key: pending.key, clip: pending.clip, from: pending.grade, grade: null };
      state.changeMode = true;
      setStatus(
        "Clip " + label(pending.clip) + " (graded " + pending.grade + ") is still being " +
          "saved: the next grade key changes it, not the clip on screen.",
        "warn"
      );
      renderUndo();
      return;
    }
    if (!state.last || undoSecondsLeft() <= 0) {
      setStatus("There is no recent grade to change.", "warn");
      return;
    }
    state.changeMode = true;
    setStatus("");
    renderUndo();
  }

  function exitChangeMode() {
    if (!state.changeMode) return;
    state.changeMode = false;
    if (state.waitingChange && !state.waitingChange.grade) state.waitingChange = null;
    setStatus("");
    renderUndo();
  }

  function changeLast(grade) {
    const last = state.last;
    state.changeMode = false;
    const waiting = state.waitingChange;
    if (waiting) {
      if (grade === waiting.from) {
        state.waitingChange = null;
        setStatus("Clip " + label(waiting.clip) + " stays " + grade + ".");
      } else {
        waiting.grade = grade;
        setStatus(
          "Clip " + label(waiting.clip) + " will be changed to " + grade +
            " once its grade is saved.",
          "ok"
        );
      }
      renderUndo();
      return;
    }
    if (!last || undoSecondsLeft() <= 0) {
      renderUndo();
      setStatus("The time to change that grade has passed.", "warn");
      return;
    }
    if (newerGradeWaiting()) {
      renderUndo();
      setStatus(
        "Your newest grade is still on its way; change it once it is saved.",
        "warn"
      );
      return;
    }
    if (grade === last.grade) {
      renderUndo();
      setStatus("Clip " + label(last.clip) + " stays " + grade + ".");
      return;
    }
    queueChange(last, grade);
  }

  function queueChange(last, grade) {
    const item = {
      key: newKey(),
      kind: "change",
      tab: config.tab,
      method: "PATCH",
      url: last.changeUrl,
      voteId: last.id,
      clip: last.clip,
      grade,
      body: { grade },
      queuedAt: Date.now(),
      attempts: 0,
    };
    outbox.push(item);
    ctx.drain();
  }

  async function sendChange(item) {
    setStatus("Changing clip " + label(item.clip) + " to " + item.grade + "…");
    const result = await deliver(
      item,
      "The change of clip " + label(item.clip) + " to " + item.grade + " is not saved yet"
    );
    if (result.ok) {
      const vote = result.data;
      hideError();
      if (state.last && state.last.id === vote.id) {
        state.last.grade = vote.grade || item.grade;
        save();
      }
      showProgress(vote.progress);
      setStatus("Changed: clip " + label(item.clip) + " is now graded " + (vote.grade || item.grade) + ".", "ok");
      if (vote.panel) renderPanel(ui.reveal, vote.panel, item.clip);
      renderUndo();
      return;
    }
    if (result.error.status === 409 && state.last && state.last.id === item.voteId) {
      state.last = null;
      save();
    }
    showError("Clip " + label(item.clip) + " was not changed to " + item.grade + ": " + result.error.message);
    setStatus("");
    renderUndo();
  }

  return {
    rememberLast,
    forgetWaiting,
    renderUndo,
    enterChangeMode,
    exitChangeMode,
    changeLast,
    sendChange,
    restore,
  };
}
