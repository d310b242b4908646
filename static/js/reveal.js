// A revealed password on the record page (templates/vault/record.html): Hide masks it at once,
// and it hides by itself after REVEAL_AUTO_HIDE_SECONDS (data-reveal-auto-hide), with the time
// left shown beside Hide. Hiding masks every revealed value in the page, then loads the record
// page again (replacing this history entry), which shows them masked with the Reveal buttons:
// the values are shown once (vault/revealed.py). Without JavaScript, Hide is a link to the
// record page, which does the same.
(function () {
  "use strict";

  var MASK = "••••••••";
  var revealed = document.querySelectorAll(".secret.revealed");
  if (!revealed.length) { return; }

  function hide(url) {
    window.clearInterval(timer);
    revealed.forEach(function (element) {
      element.textContent = MASK;
      element.classList.remove("revealed");
      element.classList.add("masked");
      element.setAttribute("aria-label", "Password hidden");
    });
    document.querySelectorAll(".auto-hide-note").forEach(function (note) { note.remove(); });
    window.location.replace(url);
  }

  var links = document.querySelectorAll("a[data-hide]");
  links.forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      hide(link.href);
    });
  });

  // A history row revealed after the password was confirmed lands here without its anchor.
  var version = document.querySelector(".secret.revealed[data-version]");
  if (version && !window.location.hash) { version.scrollIntoView({ block: "center" }); }

  var holder = document.querySelector("[data-reveal-auto-hide]");
  var seconds = holder ? parseInt(holder.getAttribute("data-reveal-auto-hide"), 10) : 0;
  var timer = null;
  if (!(seconds > 0) || !links.length) { return; }
  var target = links[0].href;
  var notes = [];
  links.forEach(function (link) {
    var note = document.createElement("span");
    note.className = "muted auto-hide-note";
    link.insertAdjacentElement("afterend", note);
    notes.push(note);
  });
  var deadline = Date.now() + seconds * 1000;
  function tick() {
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    notes.forEach(function (note) { note.textContent = " Hides in " + left + " s"; });
    if (left === 0) { hide(target); }
  }
  tick();
  timer = window.setInterval(tick, 1000);
})();
