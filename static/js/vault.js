// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  function csrfToken(element) {
    var form = element.closest("form");
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(status, text, failed) {
    if (!status) { return; }
    status.textContent = text;
    status.classList.toggle("failed", !!failed);
    window.clearTimeout(status.vaultTimer);
    status.vaultTimer = window.setTimeout(function () { status.textContent = ""; }, 4000);
  }

  // Copy: ask the vault for the password (an audited reveal) and put it on the clipboard.
  // The page keeps showing the password masked; only the "Copied" note appears.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-url]");
    if (!button) { return; }
    event.preventDefault();
    var status = button.parentElement.querySelector(".copy-status");
    if (!navigator.clipboard || !window.isSecureContext) {
      say(status, "Copy needs HTTPS or localhost; use Reveal instead.", true);
      return;
    }
    button.disabled = true;
    fetch(button.getAttribute("data-copy-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken(button) },
    })
      .then(function (response) {
        // 401: the vault wants the password again (or a two-factor code) before a reveal.
        if (response.status === 401) {
          return response.json().then(function (data) {
            var next = data.confirm_url || data.url;
            if (next) { window.location.assign(next); }
            throw new Error("confirm first");
          });
        }
        // 429: over the reveal limit; 409: the stored password cannot be decrypted.
        // Both come with a message meant for the person.
        if (response.status === 429 || response.status === 409) {
          return response.json().then(function (data) {
            var error = new Error(data.message || "Too many reveals; try again later.");
            error.forPerson = true;
            throw error;
          });
        }
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (data) { return navigator.clipboard.writeText(data.password); })
      .then(function () { say(status, "Copied"); })
      .catch(function (error) {
        var text = error && error.message;
        if (text === "confirm first") { return; }
        say(status, error && error.forPerson ? text : "Copy failed; use Reveal instead.", true);
      })
      .finally(function () { button.disabled = false; });
  });

  // Copy of a password already revealed on the page (the other passwords AWS may hold): the
  // reveal was the audited step; copying what is shown asks the vault for nothing.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-shown]");
    if (!button) { return; }
    event.preventDefault();
    var item = button.closest("[data-candidate]");
    var shown = item && item.querySelector("[data-candidate-password]");
    var status = item && item.querySelector(".copy-status");
    if (!shown || !navigator.clipboard || !window.isSecureContext) {
      say(status, "Copy needs HTTPS or localhost; select the password instead.", true);
      return;
    }
    navigator.clipboard.writeText(shown.textContent)
      .then(function () { say(status, "Copied"); })
      .catch(function () { say(status, "Copy failed; select the password instead.", true); });
  });

  // A revealed password is shown once (vault/revealed.py). A page that shows one and comes
  // back from the back-forward cache is loaded again, which shows it masked.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && document.querySelector(".secret.revealed")) {
      window.location.reload();
    }
  });

  // Destructive forms ask first.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();
