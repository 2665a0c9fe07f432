// The cart's counter (counter/): on the vendor's page the cart's QR is fetched anew every few
// seconds (it expires), and today's sales refresh live from the inbox's websocket; on every page
// with product quantities, the button shows the running total.
(function () {
  "use strict";

  // The running total of a quantities form.
  document.querySelectorAll("[data-counter-form]").forEach(function (form) {
    var out = form.querySelector("[data-total]");
    if (!out) return;
    var fmt = new Intl.NumberFormat(document.documentElement.lang || "ko", {
      style: "currency", currency: "KRW", maximumFractionDigits: 0
    });
    function total() {
      var sum = 0;
      form.querySelectorAll("input[data-price]").forEach(function (input) {
        var n = parseInt(input.value, 10);
        if (n > 0) sum += n * parseInt(input.dataset.price, 10);
      });
      out.textContent = sum ? "· " + fmt.format(sum) : "";
    }
    form.addEventListener("input", total);
    total();
  });

  // One submit per form: a second tap while the first is on its way would ask twice.
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.setAttribute("aria-busy", "true");
      });
    });
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;  // back from the card page: the forms work again
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      delete form.dataset.sent;
      form.querySelectorAll("button[aria-busy]").forEach(function (b) { b.removeAttribute("aria-busy"); });
    });
  });

  // The vendor's rotating cart QR.
  var qr = document.getElementById("cart-qr");
  var state = document.getElementById("qr-state");
  if (qr) {
    var every = Math.max(5, parseInt(qr.dataset.rotate, 10) || 30) * 1000;
    var timer = null;
    var schedule = function () { timer = setTimeout(rotate, every); };
    var rotate = function () {
      if (document.hidden) { timer = null; return; }  // again when the page is shown
      fetch(qr.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (res) { return res.json().then(function (body) { return [res.ok, body]; }); })
        .then(function (answer) {
          if (answer[0]) { qr.innerHTML = answer[1].svg; qr.hidden = false; }
          else { qr.hidden = true; if (state) state.textContent = answer[1].error || ""; }
        })
        .catch(function () { /* offline: the next turn tries again */ })
        .then(schedule);
    };
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer === null) rotate();
    });
    schedule();
  }

  // Today's sales at the cart, live.
  var sales = document.getElementById("counter-sales");
  var live = document.getElementById("live-state");
  if (sales && window.O2O && O2O.live) {
    var loading = false, again = false;
    var refresh = function () {
      if (loading) { again = true; return; }
      loading = true;
      fetch(sales.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (res) { return res.ok ? res.text() : Promise.reject(res.status); })
        .then(function (html) { sales.innerHTML = html; })
        .catch(function () { again = true; })
        .then(function () { loading = false; if (again) { again = false; setTimeout(refresh, 1000); } });
    };
    O2O.live("/ws/vendor/orders/", {
      open: function () { if (live) live.textContent = ""; refresh(); },
      message: function (msg) { if (msg.type === "order.changed") refresh(); },
      close: function () { if (live) live.textContent = "…"; }
    });
  }
})();
