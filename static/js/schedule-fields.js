// The schedule widget (templates/vault/_schedule_fields.html): show only the fields that the
// chosen schedule type reads. The form lists them in data-schedule-fields.
(function () {
  "use strict";
  document.querySelectorAll("[data-schedule-fields]").forEach(function (box) {
    var uses = JSON.parse(box.getAttribute("data-schedule-fields"));
    var select = box.querySelector('select[name="schedule_type"]');
    if (!select) { return; }
    var all = [];
    Object.keys(uses).forEach(function (kind) {
      uses[kind].forEach(function (name) { if (all.indexOf(name) === -1) { all.push(name); } });
    });
    function update() {
      var shown = uses[select.value] || all;
      all.forEach(function (name) {
        var row = box.querySelector('[data-field="' + name + '"]');
        if (row) { row.hidden = shown.indexOf(name) === -1; }
      });
    }
    select.addEventListener("change", update);
    update();
  });
})();
