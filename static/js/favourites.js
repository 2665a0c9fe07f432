// Favourite buttons (the heart, the "tell me when it is near" switch): the forms work without
// JavaScript; here they are sent with fetch and the button's state is flipped in place.
(function () {
  "use strict";
  var said = document.getElementById("favourites-said");
  document.querySelectorAll("form[data-toggle]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.fetch) return;
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      var field = form.querySelector("input[name=on]");
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      }).then(function (data) {
        var state = data.on ? "true" : "false";
        if (button.hasAttribute("aria-pressed")) button.setAttribute("aria-pressed", state);
        if (button.hasAttribute("aria-checked")) button.setAttribute("aria-checked", state);
        field.value = data.on ? "0" : "1";
        if (said) said.textContent = data.said;
      }).catch(function () {
        form.submit();  // the page answers without JavaScript
      }).then(function () {
        form.removeAttribute("aria-busy");
        button.removeAttribute("aria-busy");
      });
    });
  });
})();
