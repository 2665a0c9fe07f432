// The pickup point's page: the list of waiting orders refreshes itself every few seconds, unless
// someone is typing a code (the form would be replaced under their fingers).
(function () {
  "use strict";
  var box = document.getElementById("point-orders");
  if (!box || !window.fetch) return;
  var every = (parseInt(box.getAttribute("data-every"), 10) || 20) * 1000;
  function typing() {
    var el = document.activeElement;
    if (el && box.contains(el) && el.tagName === "INPUT") return true;
    return Array.prototype.some.call(box.querySelectorAll("input[name=code]"), function (input) {
      return input.value !== "";
    });
  }
  function refresh() {
    if (document.hidden || typing()) return;
    fetch(box.getAttribute("data-url"), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        if (r.redirected || r.status === 403) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null && !typing()) box.innerHTML = html; })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
