// Order pages: checkout (show the fields of the chosen way to receive, pick a meeting area on a
// map), the live order page (reload the status part on every message and after a reconnect), and
// the receipt's print button. Every page works without it.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  function json(id) { var el = $(id); return el ? JSON.parse(el.textContent) : null; }

  function hexMap(el, tiles) {
    el.hidden = false;
    var map = L.map(el, { zoomControl: true, scrollWheelZoom: false, zoomSnap: 0.25 });
    L.tileLayer(tiles.url, { attribution: tiles.attribution, maxZoom: 19 }).addTo(map);
    return map;
  }

  // A confirm step for forms that say so (cancel an order). Capture phase: before app.js marks the
  // form busy, so a "no" leaves the button usable.
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // --- receipt ----------------------------------------------------------------------------------
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  // --- checkout ---------------------------------------------------------------------------------
  var checkout = json("checkout-config");
  if (checkout) {
    var form = document.querySelector("form.checkout");
    var sections = form.querySelectorAll("[data-receive]");
    var newAddress = form.querySelector("[data-new-address]");
    var chosen = function (name) {
      var input = form.querySelector("input[name=" + name + "]:checked");
      return input ? input.value : "";
    };
    var showChosen = function () {
      var way = chosen("fulfilment");
      sections.forEach(function (s) { s.hidden = way !== "" && s.getAttribute("data-receive") !== way; });
      if (newAddress) newAddress.hidden = chosen("address") !== "new";
    };
    form.addEventListener("change", showChosen);
    showChosen();

    var meetEl = $("meet-map");
    if (meetEl && window.L && checkout.cells.length) {
      var map = hexMap(meetEl, checkout.tiles);
      var shapes = {};
      var paint = function () {
        var current = chosen("meet_cell");
        Object.keys(shapes).forEach(function (cell) {
          var on = cell === current;
          shapes[cell].setStyle({ weight: on ? 3 : 1, fillOpacity: on ? 0.45 : 0.15 });
        });
      };
      checkout.cells.forEach(function (c) {
        var colour = c.vendor ? "#0b7a53" : "#1f4b73";
        var poly = L.polygon(c.boundary, { color: colour, fillColor: colour }).addTo(map);
        poly.on("click", function () {
          var radio = form.querySelector("input[name=meet_cell][value='" + c.cell + "']");
          if (radio) { radio.checked = true; paint(); }
        });
        shapes[c.cell] = poly;
      });
      map.fitBounds(L.featureGroup(Object.keys(shapes).map(function (k) { return shapes[k]; })).getBounds());
      form.addEventListener("change", paint);
      paint();
    }
  }

  // --- the live order page ----------------------------------------------------------------------
  var cfg = json("order-config");
  if (!cfg) return;
  var t = json("order-i18n");
  var live = $("order-live"), state = $("live-state"), announce = $("order-announce");
  var pollTimer = null, loading = false, again = false;
  var map = null, vendorShape = null, nearbyShapes = null, meetShape = null;
  var nearbyEl = $("vendor-nearby");
  var lang = document.documentElement.lang || undefined;
  var metres = new Intl.NumberFormat(lang, { style: "unit", unit: "meter", maximumFractionDigits: 0 });

  var mapEl = $("order-map");
  if (mapEl && window.L && cfg.meet && cfg.meet.boundary.length) {
    map = hexMap(mapEl, cfg.tiles);
    meetShape = L.polygon(cfg.meet.boundary, { color: "#1f4b73", fillOpacity: 0.3 }).addTo(map);
    meetShape.bindTooltip(t.meet);
    map.fitBounds(meetShape.getBounds(), { maxZoom: 16 });
  }

  function drawVendor() {
    // The vendor's public cell while on the way: an area, never a point.
    if (!map) return;
    var cell = json("vendor-cell");
    if (vendorShape) { map.removeLayer(vendorShape); vendorShape = null; }
    if (!cell) return;
    vendorShape = L.polygon(cell.boundary, { color: "#0b7a53", fillOpacity: 0.35 }).addTo(map);
    vendorShape.bindTooltip(t.vendor);
    map.fitBounds(L.featureGroup([vendorShape]).getBounds().extend(map.getBounds()), { maxZoom: 16 });
  }

  // The last few hundred metres of a meeting: the vendor at street level (a circle as wide as the
  // rounding), only while the server says so; gone at the end message or when the socket drops.
  function showNearby(msg) {
    nearbyEl.textContent = t.nearby.replace("{distance}", metres.format(msg.distance_m));
    nearbyEl.hidden = false;
    if (!map) return;
    var at = [msg.lat, msg.lng];
    if (!nearbyShapes) {
      nearbyShapes = [
        L.circle(at, { radius: msg.precision_m, color: "#c25e00", fillOpacity: 0.2, weight: 1 }),
        L.circleMarker(at, { radius: 7, color: "#fff", weight: 2, fillColor: "#c25e00", fillOpacity: 1 })
      ];
      nearbyShapes.forEach(function (shape) { shape.addTo(map); });
      nearbyShapes[1].bindTooltip(t.nearbyMarker);
      var bounds = L.latLngBounds([at]);
      if (meetShape) bounds.extend(meetShape.getBounds());
      map.fitBounds(bounds, { maxZoom: 17, padding: [40, 40] });
    } else {
      nearbyShapes.forEach(function (shape) { shape.setLatLng(at); });
      nearbyShapes[0].setRadius(msg.precision_m);
    }
    var marker = nearbyShapes[1].getElement();
    if (marker) marker.setAttribute("data-testid", "vendor-nearby-marker");
  }

  function hideNearby() {
    if (nearbyEl) { nearbyEl.hidden = true; nearbyEl.textContent = ""; }
    if (nearbyShapes && map) nearbyShapes.forEach(function (shape) { map.removeLayer(shape); });
    nearbyShapes = null;
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    var box = live.firstElementChild;
    var seconds = box && parseInt(box.getAttribute("data-poll") || "0", 10);
    if (seconds) pollTimer = setTimeout(refresh, seconds * 1000);
  }

  function refresh() {
    if (loading) { again = true; return; }
    loading = true;
    var before = live.firstElementChild && live.firstElementChild.getAttribute("data-status");
    fetch(cfg.statusUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (res) { return res.ok ? res.text() : Promise.reject(res.status); })
      .then(function (html) {
        // Keep focus where it was if the user is in the part being replaced.
        if (live.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
        live.innerHTML = html;
        // The lines come along in a <template>: swap them in where the page shows them.
        var fresh = live.querySelector("template[data-part=lines]");
        var lines = $("order-lines");
        if (fresh) {
          if (lines) lines.replaceChildren(fresh.content);
          fresh.remove();
        }
        var box = live.firstElementChild;
        if (box && box.getAttribute("data-status") !== before) {
          announce.textContent = box.getAttribute("data-status-label");
          // A message about the step before ("Paid! The vendor will confirm soon") is old news.
          if (before) document.querySelectorAll(".messages .msg").forEach(function (m) { m.remove(); });
        }
        drawVendor();
        schedulePoll();
      })
      .catch(function () {})
      .then(function () {
        loading = false;
        if (again) { again = false; refresh(); }
      });
  }

  function connect() {
    O2O.live(cfg.ws, {
      open: function () {
        state.textContent = t.live;
        state.className = "live-state on";
        refresh();  // a snapshot: anything sent while we were away is gone
      },
      message: function (msg) {
        if (msg.type === "order.changed") refresh();
        else if (msg.type === "nearby_position" && nearbyEl) showNearby(msg);
        else if (msg.type === "nearby_position_end") hideNearby();
      },
      close: function () {
        hideNearby();  // a position nobody updates any more would mislead
        state.textContent = t.reconnecting;
        state.className = "live-state down";
      },
      stop: function (reason) {
        // Logged out, or no longer ours: say why instead of "reconnecting". The status part
        // still refreshes on its own poll where it has one.
        state.textContent = reason || t.reconnecting;
        state.className = "live-state down";
      }
    });
  }

  drawVendor();
  schedulePoll();
  connect();
})();
