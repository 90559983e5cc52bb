/*
 * The grading page's keyboard: A-E or 1-5 grade, space plays, , and . step a frame,
 * [ and ] change the speed, + - 0 zoom, M shows or hides the target marker, U or
 * Backspace changes the last grade.
 */

const GRADE_KEYS = { a: "A", b: "B", c: "C", d: "D", e: "E", 1: "A", 2: "B", 3: "C", 4: "D", 5: "E" };

export function isTyping(target) {
  return Boolean(
    target &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))
  );
}

// ctx: {player, marker, onGrade, setStatus, enterChangeMode, exitChangeMode};
// returns the keydown listener.
export function createKeyHandler(ctx) {
  const { player, marker, onGrade, setStatus, enterChangeMode, exitChangeMode } = ctx;
  return function onKeyDown(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    // A held Enter on a focused grade button would grade the clips that follow.
    if (event.key === "Enter" && event.repeat) {
      event.preventDefault();
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === " ") {
      event.preventDefault();
      if (!event.repeat) player.togglePlay();
      return;
    }
    if (Object.prototype.hasOwnProperty.call(GRADE_KEYS, key)) {
      event.preventDefault();
      // A held key must never grade the clips that follow.
      if (!event.repeat) onGrade(GRADE_KEYS[key]);
      return;
    }
    switch (key) {
      case ",":
      case "<":
        player.step(-1);
        break;
      case ".":
      case ">":
        player.step(1);
        break;
      case "[":
      case "]":
        setStatus("Speed " + player.speedBy(key === "[" ? -1 : 1) + "×");
        break;
      case "+":
      case "=":
        player.zoomBy(1);
        break;
      case "-":
      case "_":
        player.zoomBy(-1);
        break;
      case "0":
        player.setZoom(0);
        break;
      case "m":
        if (!event.repeat) setStatus(marker.toggle() ? "Marker shown." : "Marker hidden.");
        break;
      case "u":
      case "Backspace":
        if (!event.repeat) enterChangeMode();
        break;
      case "Escape":
        exitChangeMode();
        break;
      default:
        return;
    }
    event.preventDefault();
  };
}
