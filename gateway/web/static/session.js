/* Ketenpoort: warn before the session ends, and let the person stay signed in (WCAG
   2.2.1). Typing in the page counts as activity too, at most once a minute (sooner only
   where the idle time is under two minutes), so work in progress does not run into the
   idle time-out. No data leaves the page: the request only says "still here" (CSRF
   token in a header, no body). Without this script the workspace works as before. */
(function () {
  "use strict";
  var box = document.getElementById("kp-session");
  if (!box || !window.fetch) {
    return;
  }
  var lead = Number(box.getAttribute("data-warn-before")) * 1000;
  var throttle = Math.min(60000, lead);
  var button = box.querySelector("[data-action=extend]");
  var warnTimer = null;
  var endTimer = null;
  var lastPing = Date.now();
  var extendable = true;
  var ended = false;

  function show(state) {
    var messages = box.querySelectorAll("[data-state]");
    for (var i = 0; i < messages.length; i += 1) {
      messages[i].hidden = messages[i].getAttribute("data-state") !== state;
    }
    button.hidden = state !== "warning";
    box.hidden = false;
  }

  function schedule(seconds) {
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    box.hidden = true;
    var left = seconds * 1000;
    warnTimer = window.setTimeout(function () {
      show(extendable ? "warning" : "final");
    }, Math.max(0, left - lead));
    endTimer = window.setTimeout(function () {
      ended = true;
      show("ended");
    }, left);
  }

  function ping() {
    if (ended) {
      return;
    }
    lastPing = Date.now();
    window.fetch(box.getAttribute("data-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": box.getAttribute("data-csrf") }
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok || !body.signedIn) {
          throw new Error("signed out");
        }
        extendable = body.extendable;
        schedule(body.expiresIn);
      });
    }).catch(function () {
      ended = true;
      show("ended");
    });
  }

  button.addEventListener("click", ping);
  document.addEventListener("input", function () {
    if (extendable && !ended && Date.now() - lastPing > throttle) {
      ping();
    }
  });
  schedule(Number(box.getAttribute("data-expires-in")));
}());
