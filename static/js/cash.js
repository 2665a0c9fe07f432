// The cash-sale page (templates/orders/vendor_cash.html): a tap on a tile adds one, "−" takes one
// away, and the big button says the total. Without this script the quantities are typed instead.
(function () {
  "use strict";
  var form = document.querySelector("[data-cash-form]");
  if (!form) return;
  var i18n = JSON.parse(document.getElementById("cash-i18n").textContent);
  var submit = form.querySelector("[data-cash-submit]");
  var money = new Intl.NumberFormat(document.documentElement.lang || "ko", {
    style: "currency", currency: "KRW", maximumFractionDigits: 0
  });

  function tiles() { return form.querySelectorAll(".cash-tile"); }

  function refresh() {
    var total = 0;
    tiles().forEach(function (tile) {
      var input = tile.querySelector("[data-cash-qty]");
      var n = parseInt(input.value, 10) || 0;
      total += n * parseInt(tile.dataset.price, 10);
      tile.classList.toggle("chosen", n > 0);
      tile.querySelector("[data-cash-minus]").hidden = n <= 0;
    });
    submit.textContent = i18n.received.replace("{total}", money.format(total));
    submit.disabled = total <= 0;
  }

  form.addEventListener("click", function (event) {
    var tile = event.target.closest(".cash-tile");
    if (!tile) return;
    var input = tile.querySelector("[data-cash-qty]");
    var n = parseInt(input.value, 10) || 0;
    var left = parseInt(tile.dataset.left, 10) || 0;
    if (event.target.closest("[data-cash-add]")) input.value = Math.min(n + 1, left);
    else if (event.target.closest("[data-cash-minus]")) input.value = Math.max(n - 1, 0);
    else return;
    refresh();
  });
  form.addEventListener("input", refresh);
  form.addEventListener("submit", function () {
    // One sale per page: the server records it once anyway (client_id), this spares the wait.
    submit.setAttribute("aria-busy", "true");
    submit.textContent = i18n.sending;
    setTimeout(function () { submit.disabled = true; }, 0);
  });
  document.documentElement.classList.add("cash-js");
  refresh();
})();
