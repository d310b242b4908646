// Home dashboard: the rotation chart shows the newest days first. On a narrow screen the chart
// scrolls sideways in its box; open it scrolled to its right end (today), not the oldest day.
(function () {
  "use strict";
  var boxes = document.querySelectorAll(".chart-scroll");
  Array.prototype.forEach.call(boxes, function (box) {
    box.scrollLeft = box.scrollWidth - box.clientWidth;
  });
})();
