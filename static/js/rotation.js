// Rotate without leaving the page, then follow the rotation's status until it finishes.
// Polls only while a rotation is queued or running.
(function () {
  "use strict";
  var box = document.getElementById("rotation-status");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var timer = null;

  function active() {
    var el = box.querySelector("[data-active]");
    return el && el.getAttribute("data-active") === "1";
  }

  function poll() {
    timer = null;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        box.innerHTML = data.html;
        if (data.active) { schedule(); }
      })
      .catch(function () { schedule(5000); });
  }

  function schedule(delay) {
    if (!timer) { timer = window.setTimeout(poll, delay || 1000); }
  }

  var form = document.querySelector("form[data-rotate]");
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
        .then(function (data) {
          if (!data.ok) { showNotice(data.message); }
          poll();
        })
        .catch(function () { showNotice("Could not reach the vault; try again."); })
        .finally(function () { button.disabled = false; });
    });
  }

  function showNotice(text) {
    var note = document.getElementById("rotate-notice");
    if (!note) {
      note = document.createElement("p");
      note.id = "rotate-notice";
      note.className = "msg msg-warning";
      note.setAttribute("role", "status");
      form.parentNode.insertBefore(note, form.nextSibling);
    }
    note.textContent = text;
  }

  if (active()) { schedule(); }
})();
