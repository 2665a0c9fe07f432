// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Loading state: a submitted form's button says it is working and can't be pressed twice.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = form.querySelector("button[type=submit]");
    if (!button || form.classList.contains("lang")) return;
    if (button.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
    button.setAttribute("aria-busy", "true");
    var label = form.getAttribute("data-busy-label");
    if (label) { button.dataset.label = button.textContent; button.textContent = label; }
  });
  // Back-forward cache: restore buttons when the page is shown again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[aria-busy=true]").forEach(function (b) {
      b.removeAttribute("aria-busy");
      if (b.dataset.label) b.textContent = b.dataset.label;
    });
  });
})();
