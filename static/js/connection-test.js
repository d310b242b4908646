// Test connection: ask the configuration's gateway to test without leaving the page, then follow
// the test until the gateway has answered. Polls only while a test is queued or running: every
// second at first, then every 5 s (a gateway that is offline may take a long time).
(function () {
  "use strict";
  var box = document.getElementById("connection-status");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var timer = null;
  var polls = 0;

  function active() {
    var el = box.querySelector("[data-active]");
    return el && el.getAttribute("data-active") === "1";
  }

  function schedule() {
    if (timer) { return; }
    timer = window.setTimeout(poll, polls < 30 ? 1000 : 5000);
  }

  function poll() {
    timer = null;
    polls += 1;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        box.innerHTML = data.html;
        if (data.active) { schedule(); }
      })
      .catch(function () { polls = Math.max(polls, 30); schedule(); });
  }

  var form = document.querySelector("form[data-connection-test]");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (r) { return r.json(); })
        .then(function () { polls = 0; poll(); })
        .catch(function () { form.submit(); })
        .finally(function () { button.disabled = false; });
    });
  }

  if (active()) { schedule(); }
})();
