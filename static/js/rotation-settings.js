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
})();
