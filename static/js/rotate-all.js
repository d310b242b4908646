// Rotate all: follow the batch's progress until every rotation has finished.
// Polls only while the batch is not finished; failures are added as they happen.
(function () {
  "use strict";
  var box = document.getElementById("batch");
  if (!box || box.getAttribute("data-finished") === "1") { return; }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("batch-progress");
  var list = document.getElementById("batch-failures");
  var none = document.getElementById("batch-no-failures");

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(value); }
  }

  function showFailures(failures) {
    if (!list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    failures.forEach(function (f) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = f.url;
      link.textContent = f.title;
      var error = document.createElement("span");
      error.className = "error-text";
      error.textContent = f.error;
      item.appendChild(link);
      item.appendChild(document.createTextNode(": "));
      item.appendChild(error);
      if (f.may_be_live) {
        var badge = document.createElement("span");
        badge.className = "badge badge-failed";
        badge.textContent = "password may be live";
        item.appendChild(document.createTextNode(" "));
        item.appendChild(badge);
      }
      list.appendChild(item);
    });
    if (none) { none.hidden = failures.length > 0; }
  }

  function show(data) {
    if (bar) {
      bar.max = Math.max(data.total, 1);
      bar.value = data.done;
      bar.textContent = data.text;
    }
    setText("batch-count", data.text);
    setText("batch-succeeded", data.succeeded);
    setText("batch-failed", data.failed);
    setText("batch-active", data.active);
    setText("batch-finished", data.finished ? "Finished." : "");
    showFailures(data.failures);
    box.setAttribute("data-finished", data.finished ? "1" : "0");
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        // Logged out, or the batch is gone: asking again will not help.
        if (r.status >= 400 && r.status < 500) { return null; }
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      })
      .then(function (data) {
        if (!data) { return; }
        show(data);
        if (!data.finished) { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 1000);
})();
