// Password Rotation Settings: show the fields of the chosen rotation method only (the access
// key's grace periods, or the password complexity). Without JavaScript both are shown, each
// saying which method it is for. A part holding an error stays shown, so it can be corrected.
(function () {
  "use strict";
  var method = document.getElementById("id_method");
  if (!method) { return; }
  var parts = document.querySelectorAll("[data-method-only]");
  function show() {
    parts.forEach(function (part) {
      var mine = part.getAttribute("data-method-only") === method.value;
      part.hidden = !mine && !part.querySelector(".has-error");
    });
  }
  method.addEventListener("change", show);
  show();
})();
