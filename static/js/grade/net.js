/*
 * HTTP for the grading page: JSON API calls that turn every failure into an
 * ApiError with a sentence a person can read, whole-file video downloads, and a
 * retrier that keeps trying temporary failures with growing pauses.
 */

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status; // 0 when the server could not be reached
    this.data = data;
  }
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function describeError(status, data) {
  let detail = "";
  if (data && typeof data === "object") {
    if (typeof data.detail === "string") {
      detail = data.detail;
    } else {
      detail = Object.entries(data)
        .map(([field, value]) => field + ": " + [].concat(value).join(" "))
        .join("; ");
    }
  }
  if (status === 401 || status === 403) {
    return (detail || "You are not signed in.") + " Your session may have ended.";
  }
  if (status >= 500) {
    return "The server had a problem (HTTP " + status + ")." + (detail ? " " + detail : "");
  }
  return detail || "The server answered HTTP " + status + ".";
}

// api(method, url, body) -> parsed JSON, or throws ApiError. Writes carry the CSRF
// token from the csrftoken cookie; `onServerDate(ms)` hears each answer's Date.
export function createApi({ loginPath, onServerDate }) {
  return async function api(method, url, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new ApiError(0, "The server could not be reached (network error).");
    }
    const serverNow = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(serverNow) && onServerDate) onServerDate(serverNow);
    if (response.redirected && response.url.indexOf(loginPath) !== -1) {
      throw new ApiError(401, "Your session has ended; log in again.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, describeError(response.status, data), data);
    if (data === null) throw new ApiError(502, "The server sent an answer that is not JSON.");
    return data;
  };
}

// The whole mp4 as a Blob: played from an object URL, looping and seeking never
// wait on the network.
export async function fetchVideo(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin" });
  } catch (err) {
    throw new ApiError(0, "The clip video could not be downloaded (network error).");
  }
  const type = response.headers.get("Content-Type") || "";
  if (response.ok && (response.redirected || type.indexOf("text/html") !== -1)) {
    throw new ApiError(401, "Your session has ended; log in again.");
  }
  if (!response.ok) {
    throw new ApiError(
      response.status,
      "The clip video could not be downloaded (HTTP " + response.status + ")."
    );
  }
  const blob = await response.blob();
  return blob.type ? blob : new Blob([blob], { type: "video/mp4" });
}

// Temporary failures: the network, the server, rate limits, an ended session.
export function isRetryable(err) {
  const s = err.status;
  return s === 0 || s === 401 || s === 403 || s === 408 || s === 429 || s >= 500;
}

// persist(what, attempt, onAttemptFailed, cancelled) runs `attempt` until it
// succeeds or fails for good, retrying temporary failures with growing pauses
// (announced through onRetry(what, err, waitMs, failures)). It returns
// {ok: true, data}, {ok: false, error} for a definitive answer, or
// {ok: false, cancelled: true} once `cancelled()` turns true. wakeNow() ends the
// current pause early ("Retry now"); so does the browser coming back online.
export function createRetrier({ onRetry, onRecovered, firstDelayMs = 1000, maxDelayMs = 30000 }) {
  let wake = null;

  function pause(ms) {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        window.removeEventListener("online", finish);
        wake = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      window.addEventListener("online", finish);
      wake = finish;
    });
  }

  async function persist(what, attempt, onAttemptFailed, cancelled) {
    let delay = firstDelayMs;
    let failures = 0;
    for (;;) {
      try {
        const data = await attempt();
        if (failures) onRecovered();
        return { ok: true, data };
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (!isRetryable(err)) {
          if (failures) onRecovered();
          return { ok: false, error: err };
        }
        failures += 1;
        if (onAttemptFailed) onAttemptFailed(failures);
        if (cancelled && cancelled()) {
          onRecovered();
          return { ok: false, cancelled: true };
        }
        const wait = Math.round(delay * (0.85 + Math.random() * 0.3));
        onRetry(what, err, wait, failures);
        await pause(wait);
        if (cancelled && cancelled()) {
          onRecovered();
          return { ok: false, cancelled: true };
        }
        delay = Math.min(delay * 2, maxDelayMs);
      }
    }
  }

  return {
    persist,
    wakeNow() {
      if (wake) wake();
    },
  };
}
