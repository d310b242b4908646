// Password Rotation Settings: keep "Next runs" current as the schedule changes (the schedule
// widget's own script, schedule-fields.js, shows the fields of the chosen type).
(function () {
  "use strict";
  var select = document.getElementById("id_schedule_type");
  if (!select) { return; }
  // Keep "Next runs" current as the schedule changes: the server computes them (the same code
  // that schedules), from the form as typed, without saving anything.
  var form = select.form;
  var box = form.querySelector(".upcoming");
  var widget = form.querySelector("[data-schedule-fields]");
  var scheduleFields = ["configuration"];
  widget.querySelectorAll("[name]").forEach(function (input) { scheduleFields.push(input.name); });
  var pending = null;
  function refresh() {
    var data = new FormData(form);
    data.set("preview", "1");
    fetch(form.action || window.location.href, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(".upcoming");
        if (fresh) { box.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* the "Show next runs" button still works */ });
  }
  scheduleFields.forEach(function (name) {
    var input = form.elements[name];
    if (!input || !input.addEventListener) { return; }
    input.addEventListener("change", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(refresh, 250);
    });
  });
})();
