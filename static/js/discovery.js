// Discover IAM users: follow the job's progress while it runs; reload the page once it has
// finished so the table, the filters and the import buttons show the final list.
(function () {
  "use strict";
  var box = document.getElementById("discovery");
  if (!box || box.getAttribute("data-active") !== "1") { return; }
  var url = box.getAttribute("data-status-url");

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(value); }
  }

  var phases = { listing: "listing users", report: "reading the credential report" };

  function show(data) {
    var badge = document.getElementById("discovery-status");
    if (badge) {
      badge.textContent = data.label;
      badge.className = "badge badge-" + data.status;
    }
    setText("discovery-phase", phases[data.phase] || "");
    setText("discovery-users", data.users_found);
    setText("discovery-pages", data.pages_done);
    setText("discovery-calls", data.aws_calls);
    var error = document.getElementById("discovery-error");
    if (error) {
      error.textContent = data.error || "";
      error.hidden = !data.error;
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status >= 400 && r.status < 500) { return null; }
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      })
      .then(function (data) {
        if (!data) { return; }
        show(data);
        if (data.active) { window.setTimeout(poll, 1000); } else { window.location.reload(); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 1000);
})();
