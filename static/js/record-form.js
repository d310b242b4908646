// The record form's password generator (templates/rotation/_record_form.html): asks the vault
// for a password with the record's rotation complexity (rotation/generator.py, so the rules
// live in one place) and puts it in the password field, shown so it can be read or copied.
// Without JavaScript the button stays hidden and the field is typed as before.
(function () {
  "use strict";

  var box = document.getElementById("password-generator");
  if (!box) { return; }
  var form = box.closest("form");
  var field = form && form.querySelector("input[name=password]");
  var button = document.getElementById("generate-password");
  var status = box.querySelector(".generator-status");
  if (!field || !button) { return; }
  box.hidden = false;

  function token() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(text, failed) {
    status.textContent = text;
    status.classList.toggle("failed", !!failed);
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    say("");
    fetch(box.getAttribute("data-generate-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": token() },
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("json") < 0) { throw new Error("The password could not be generated."); }
        return response.json().then(function (data) {
          if (!response.ok) { throw new Error(data.message || "status " + response.status); }
          return data;
        });
      })
      .then(function (data) {
        field.value = data.password;
        // Shown, so the person can check or copy it before saving.
        field.type = "text";
        field.setAttribute("autocomplete", "off");
        field.dispatchEvent(new Event("input", { bubbles: true }));
        say(data.message);
      })
      .catch(function (error) {
        say(error && error.message ? error.message : "The password could not be generated.", true);
      })
      .finally(function () { button.disabled = false; });
  });
})();
