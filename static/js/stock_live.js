// The vendor page's "N left" and "Sold out", live: O2O.live on the vendor's public stock socket.
// Every (re)connection starts with a snapshot of the whole cart, so nothing missed while away
// stays wrong. A product at 0 hides its "Add to basket"; one back in stock shows it again.
(function () {
  "use strict";
  var list = document.getElementById("stock-live");
  if (!list || !window.O2O || !window.O2O.live) return;
  var text = list.dataset;

  function left(n) {
    return (n === 1 ? text.leftOne : text.leftOther).replace("%(n)s", String(n));
  }

  function apply(stock) {
    list.querySelectorAll("li[data-product]").forEach(function (item) {
      var n = stock[item.getAttribute("data-product")];
      if (typeof n !== "number") n = 0;  // no longer on the cart (or no longer on sale)
      var qty = item.querySelector(".qty");
      var label = n > 0 ? left(n) : text.soldOut;
      if (qty && qty.textContent !== label) qty.textContent = label;
      item.classList.toggle("sold-out", n <= 0);
      var form = item.querySelector("form.add-to-cart");
      if (form) {
        form.hidden = n <= 0;
        var input = form.querySelector("input[name=quantity]");
        if (input && n > 0) {
          input.max = String(n);
          if (Number(input.value) > n) input.value = String(n);
        }
      }
    });
  }

  window.O2O.live(list.getAttribute("data-socket"), {
    message: function (msg) {
      if (msg && msg.type === "stock.update" && msg.stock && typeof msg.stock === "object") {
        apply(msg.stock);
      }
    }
  });
})();
