// Rotate without leaving the page, then follow the rotation's status until it finishes.
// Polls only while a rotation is queued or running.
(function () {
  "use strict";
  var box = document.getElementById("rotation-status");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var timer = null;
  var watching = false;

  // When a rotation we watched finishes, bring the parts of the page it changed up to date
  // (last rotated, next run, password history) without reloading the page.
  function refreshSections() {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["rotation-facts", "password-history"].forEach(function (id) {
          var now = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (now && next) { now.replaceWith(next); }
        });
      })
      .catch(function () { /* the status above is already right */ });
  }

  function active() {
    var el = box.querySelector("[data-active]");
    return el && el.getAttribute("data-active") === "1";
  }

  function poll() {
    timer = null;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        // A button in the status (Cancel rotation) is not pulled from under a pointer or the
        // keyboard focus: the next poll brings the news instead.
        if (box.querySelector("form:hover, form:focus-within")) { schedule(); return; }
        box.innerHTML = data.html;
        if (data.active) { watching = true; schedule(); }
        else if (watching) { watching = false; refreshSections(); }
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
          watching = true;
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
