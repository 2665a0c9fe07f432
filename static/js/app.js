// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Loading state: a submitted form's button says it is working and can't be pressed twice.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.classList.contains("lang")) return;
    var button = event.submitter || form.querySelector("button[type=submit]");
    if (!button) return;
    if (form.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
    form.setAttribute("aria-busy", "true");
    button.setAttribute("aria-busy", "true");
    var label = form.getAttribute("data-busy-label");
    if (label) { button.dataset.label = button.textContent; button.textContent = label; }
  });
  // Back-forward cache: restore forms and buttons when the page is shown again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("[aria-busy=true]").forEach(function (el) {
      el.removeAttribute("aria-busy");
      if (el.dataset.label) el.textContent = el.dataset.label;
    });
  });
  // A menu wider than the screen scrolls sideways: keep the current page's item in view, and fade
  // the edges that have more items beyond them.
  var nav = document.querySelector(".main-nav");
  if (nav) {
    var FADE = 48;  // the faded edge (40px in app.css) and a little room
    var current = nav.querySelector("[aria-current=page]");
    if (current && current.offsetLeft + current.offsetWidth > nav.clientWidth - FADE) {
      nav.scrollLeft = current.offsetLeft + current.offsetWidth - nav.clientWidth + FADE;
    }
    var hint = function () {
      nav.classList.toggle("more-left", nav.scrollLeft > 2);
      nav.classList.toggle("more-right", nav.scrollLeft + nav.clientWidth < nav.scrollWidth - 2);
    };
    nav.addEventListener("scroll", hint, { passive: true });
    window.addEventListener("resize", hint);
    hint();
  }
  // After a failed submit, take keyboard and screen-reader users to the error summary.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();
  // "Use my current location" fills the latitude/longitude fields named in data-fill-location.
  document.querySelectorAll("[data-fill-location]").forEach(function (button) {
    if (!("geolocation" in navigator)) return;
    var ids = button.getAttribute("data-fill-location").split(" ");
    var status = button.parentNode.querySelector("[data-location-status]");
    button.parentNode.hidden = false;
    button.addEventListener("click", function () {
      button.setAttribute("aria-busy", "true");
      navigator.geolocation.getCurrentPosition(function (pos) {
        button.removeAttribute("aria-busy");
        document.getElementById(ids[0]).value = pos.coords.latitude.toFixed(6);
        document.getElementById(ids[1]).value = pos.coords.longitude.toFixed(6);
        if (status) status.textContent = button.getAttribute("data-done");
      }, function () {
        button.removeAttribute("aria-busy");
        if (status) status.textContent = button.getAttribute("data-error");
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  });
})();
