// Clip review: every pending clip plays in the grid with a ring on its tracked
// sperm; A approves the focused clip, R asks for a reason and rejects it. Each
// decision is POSTed to /api/clips/<id>/review/ (session + CSRF) and shown in
// place; the focus moves on to the next clip still pending.
(function () {
  "use strict";

  var grid = document.getElementById("review-grid");
  if (!grid) return;
  var statusBox = document.getElementById("review-status");
  var countBox = document.getElementById("review-count");
  var apiTemplate = grid.dataset.api; // ".../clips/0/review/"

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function cards() {
    return Array.prototype.slice.call(grid.querySelectorAll(".review-card"));
  }

  function pendingCards() {
    return cards().filter(function (card) { return !card.dataset.decided; });
  }

  function say(text, tone) {
    statusBox.textContent = text;
    statusBox.className = "status" + (tone ? " status--" + tone : "");
  }

  function focusNext(from) {
    var all = cards();
    var start = all.indexOf(from);
    for (var i = 1; i <= all.length; i++) {
      var card = all[(start + i) % all.length];
      if (!card.dataset.decided) {
        card.focus();
        return;
      }
    }
  }

  function showReason(card) {
    var form = card.querySelector(".review-card__reason");
    form.hidden = false;
    form.querySelector("input").focus();
  }

  function hideReason(card) {
    card.querySelector(".review-card__reason").hidden = true;
    card.focus();
  }

  function decide(card, decision, reason) {
    if (card.dataset.decided || card.dataset.sending) return;
    card.dataset.sending = "1";
    var id = card.dataset.clip;
    var url = apiTemplate.replace("/0/", "/" + encodeURIComponent(id) + "/");
    say("Saving the decision on clip " + id + "…");
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify({ decision: decision, reason: reason || "" }),
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) {
            throw new Error(data.detail || "The server answered HTTP " + response.status + ".");
          }
          return data;
        });
      })
      .then(function (data) {
        card.dataset.decided = data.review;
        card.classList.add(data.review === "approved" ? "is-approved" : "is-rejected");
        card.querySelector(".review-card__actions").hidden = true;
        card.querySelector(".review-card__reason").hidden = true;
        var result = card.querySelector(".review-card__result");
        result.textContent = data.review === "approved" ? "Approved: experts will see it."
          : "Rejected: " + data.review_reason;
        result.hidden = false;
        countBox.textContent = String(pendingCards().length);
        say("Clip " + id + " " + data.review + ".", "ok");
        focusNext(card);
      })
      .catch(function (err) {
        say("Clip " + id + " was not saved: " + err.message, "warn");
      })
      .finally(function () {
        delete card.dataset.sending;
      });
  }

  // The ring on the tracked head, frame by frame, as on the grading page.
  function bindRing(card) {
    var video = card.querySelector("video");
    var circle = card.querySelector(".review-card__ring circle");
    var points = [];
    try { points = JSON.parse(card.dataset.marker || "[]"); } catch (err) { points = []; }
    var fps = Number(card.dataset.fps) || 15;
    if (!points.length) {
      circle.setAttribute("r", "0");
      return;
    }
    var size = Number(card.querySelector("svg").viewBox.baseVal.width) || 150;
    circle.setAttribute("r", String(Math.round(size * 0.09 * 10) / 10));
    function draw() {
      var t = Math.min(points.length - 1, Math.max(0, Math.floor(video.currentTime * fps + 1e-3)));
      circle.setAttribute("cx", String(points[t][0]));
      circle.setAttribute("cy", String(points[t][1]));
    }
    if (typeof video.requestVideoFrameCallback === "function") {
      // One chain per video: each frame callback registers the next one.
      var onFrame = function () {
        draw();
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    } else {
      video.addEventListener("timeupdate", draw);
    }
    draw();
  }

  cards().forEach(function (card) {
    bindRing(card);
    card.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-decision]");
      if (!button) return;
      if (button.dataset.decision === "approve") decide(card, "approve");
      else showReason(card);
    });
    card.querySelector(".review-card__reason").addEventListener("submit", function (event) {
      event.preventDefault();
      var reason = card.querySelector(".review-card__reason input").value.trim();
      if (!reason) {
        say("Say why the clip is rejected.", "warn");
        return;
      }
      decide(card, "reject", reason);
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var card = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".review-card") : null;
    var typing = document.activeElement && document.activeElement.tagName === "INPUT";
    if (typing) {
      if (event.key === "Escape" && card) hideReason(card);
      return;
    }
    var all = cards();
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      var index = card ? all.indexOf(card) : -1;
      var next = all[(index + (event.key === "ArrowRight" ? 1 : all.length - 1) + all.length) % all.length];
      if (next) next.focus();
      return;
    }
    if (!card || card.dataset.decided) return;
    var key = event.key.toLowerCase();
    if (key === "a") {
      event.preventDefault();
      decide(card, "approve");
    } else if (key === "r") {
      event.preventDefault();
      showReason(card);
    }
  });

  var first = pendingCards()[0];
  if (first) first.focus();
})();
