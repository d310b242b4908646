// Show only the schedule fields that the chosen schedule type uses.
(function () {
  "use strict";
  var select = document.getElementById("id_schedule_type");
  if (!select) { return; }
  var uses = {
    ON_DEMAND: [],
    CONFIG_DEFAULT: [],
    DAILY: ["tz", "time", "interval_count"],
    WEEKLY: ["tz", "time", "interval_count", "weekday"],
    MONTHLY_BY_DAY: ["tz", "time", "month_day"],
    MONTHLY_BY_WEEKDAY: ["tz", "time", "weekday", "occurrence"],
    YEARLY: ["tz", "time", "month", "month_day"],
    CRON: ["tz", "cron"],
  };
  var optional = ["tz", "time", "interval_count", "weekday", "month_day", "occurrence", "month", "cron"];
  function update() {
    var shown = uses[select.value] || optional;
    optional.forEach(function (name) {
      var row = document.querySelector('[data-field="' + name + '"]');
      if (row) { row.hidden = shown.indexOf(name) === -1; }
    });
  }
  select.addEventListener("change", update);
  update();

  // Keep "Next runs" current as the schedule changes: the server computes them (the same code
  // that schedules), from the form as typed, without saving anything.
  var form = select.form;
  var box = form.querySelector(".upcoming");
  var scheduleFields = ["schedule_type"].concat(optional, ["configuration"]);
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
    if (!input) { return; }
    input.addEventListener("change", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(refresh, 250);
    });
  });
})();
