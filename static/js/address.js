// A new delivery address at checkout: a pin on a map with the vendor's delivery area drawn (its
// H3 cells), "use my location", and an address search when a geocoder is configured. The pin fills
// the latitude/longitude inputs, which stay visible when this script or the map can't run.
// The server checks the same rule again (customers.services.address_create).
(function () {
  "use strict";
  var field = document.querySelector("[data-pin-field]");
  var mapEl = document.getElementById("address-map");
  var config = document.getElementById("checkout-config");
  var areaEl = document.getElementById("address-area");
  if (!field || !mapEl || !areaEl || !window.L) return;

  var form = field.closest("form");
  var lat = document.getElementById("id_new_lat");
  var lng = document.getElementById("id_new_lng");
  var area = JSON.parse(areaEl.textContent);
  var tiles = config ? JSON.parse(config.textContent).tiles : null;
  var message = field.querySelector("[data-pin-message]");
  var locationStatus = field.querySelector("[data-location-status]");
  var serverErrors = field.querySelector("[data-pin-errors]");
  var text = function (name) { return field.getAttribute("data-" + name); };
  var map = null, pin = null, areaBounds = null;

  field.hidden = false;
  form.querySelector("[data-pin-inputs]").hidden = true;

  // Ray casting over each hexagon's corners ([lat, lng] pairs): cells are small and convex.
  function inPolygon(point, corners) {
    var inside = false;
    for (var i = 0, j = corners.length - 1; i < corners.length; j = i++) {
      var yi = corners[i][0], xi = corners[i][1], yj = corners[j][0], xj = corners[j][1];
      if ((yi > point[0]) !== (yj > point[0]) &&
          point[1] < (xj - xi) * (point[0] - yi) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }
  function inArea(point) {
    return area.some(function (c) { return inPolygon(point, c.boundary); });
  }
  function current() {
    var a = parseFloat(lat.value), b = parseFloat(lng.value);
    return isFinite(a) && isFinite(b) && Math.abs(a) <= 90 && Math.abs(b) <= 180 ? [a, b] : null;
  }
  // "inside", "outside" or "missing" (no pin yet).
  function verdict() {
    var point = current();
    if (!point) return "missing";
    return inArea(point) ? "inside" : "outside";
  }

  function say(state) {
    message.classList.toggle("good", state === "inside");
    message.classList.toggle("bad", state !== "inside");
    message.textContent = state === "inside" ? text("inside") : state === "outside" ? text("outside") : text("missing");
    mapEl.classList.toggle("inside", state === "inside");
    mapEl.classList.toggle("outside", state === "outside");
    field.classList.toggle("has-error", state === "outside");
  }

  function place(point, pan) {
    lat.value = point[0].toFixed(6);
    lng.value = point[1].toFixed(6);
    if (serverErrors) { serverErrors.remove(); serverErrors = null; }
    var blocked = form.querySelector("[data-pin-blocked]");
    if (blocked) blocked.remove();
    if (map) {
      if (pin) pin.setLatLng(point);
      else {
        pin = L.marker(point, { draggable: true, keyboard: false }).addTo(map);
        pin.on("dragend", function () {
          var at = pin.getLatLng();
          place([at.lat, at.lng], false);
        });
      }
      // Keep the area in view with the pin: a pin far away shows how far, not a lone street.
      if (pan) map.fitBounds(areaBounds ? areaBounds.pad(0).extend(point) : L.latLngBounds([point]), { padding: [24, 40], maxZoom: 16 });
      else map.panInside(point, { padding: [30, 50] });
    }
    say(verdict());
  }

  function draw() {
    if (map) { map.invalidateSize(); return; }
    map = L.map(mapEl, { scrollWheelZoom: false, zoomSnap: 0.25 });
    if (tiles) L.tileLayer(tiles.url, { attribution: tiles.attribution, maxZoom: 19 }).addTo(map);
    var shapes = area.map(function (c) {
      return L.polygon(c.boundary, { color: "#0b7a53", weight: 1, fillColor: "#0b7a53", fillOpacity: 0.18, interactive: false });
    });
    if (shapes.length) {
      areaBounds = L.featureGroup(shapes).addTo(map).getBounds();
      map.fitBounds(areaBounds, { paddingTopLeft: [12, 12], paddingBottomRight: [12, 28] });
    } else {
      map.setView([37.5665, 126.978], 12);
      message.textContent = text("no-area");
      message.classList.add("bad");
    }
    map.on("click", function (event) { place([event.latlng.lat, event.latlng.lng], false); });
    var point = current();
    if (point) place(point, true);
  }

  // The map is drawn when it is first seen (Leaflet can't measure a hidden box), and told when
  // the box changes (the customer switched to delivery or to a new address).
  function visible() { return mapEl.offsetParent !== null; }
  function maybeDraw() { if (visible()) draw(); }
  form.addEventListener("change", function () { setTimeout(maybeDraw, 0); });
  maybeDraw();

  field.querySelector("[data-pin-centre]").addEventListener("click", function () {
    if (!map) draw();
    var centre = map.getCenter();
    place([centre.lat, centre.lng], false);
  });

  var locate = field.querySelector("[data-use-location]");
  if (!("geolocation" in navigator)) locate.hidden = true;
  locate.addEventListener("click", function () {
    locate.setAttribute("aria-busy", "true");
    locationStatus.textContent = "";
    navigator.geolocation.getCurrentPosition(function (pos) {
      locate.removeAttribute("aria-busy");
      locationStatus.textContent = text("located");
      place([pos.coords.latitude, pos.coords.longitude], true);
    }, function (error) {
      locate.removeAttribute("aria-busy");
      locationStatus.textContent = error.code === 1 ? text("denied") : error.code === 3 ? text("timeout") : text("unavailable");
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });

  // Before the form goes (capture phase: before app.js marks it busy), the pin must be in the
  // area when a new address is chosen for delivery; otherwise say why, next to the map and the button.
  function chosen(name) {
    var input = form.querySelector("input[name=" + name + "]:checked");
    return input ? input.value : "";
  }
  document.addEventListener("submit", function (event) {
    if (event.target !== form) return;
    if (chosen("fulfilment") !== "delivery" || chosen("address") !== "new") return;
    var state = verdict();
    if (state === "inside") return;
    event.preventDefault();
    event.stopPropagation();
    say(state);
    var button = event.submitter || form.querySelector("button[type=submit]");
    var blocked = form.querySelector("[data-pin-blocked]");
    if (!blocked) {
      blocked = document.createElement("p");
      blocked.className = "pin-blocked";
      blocked.setAttribute("data-pin-blocked", "");
      blocked.setAttribute("role", "alert");
      button.parentNode.insertBefore(blocked, button);
    }
    blocked.textContent = text("blocked");
    mapEl.scrollIntoView({ block: "center" });
    message.focus({ preventScroll: true });
  }, true);

  // The address search, shown only when a geocoder is configured.
  var search = field.querySelector("[data-address-search]");
  if (search) {
    var input = search.querySelector("input");
    var results = search.querySelector("[data-search-results]");
    var status = search.querySelector("[data-search-status]");
    var run = function () {
      var q = input.value.trim();
      if (q.length < 2) return;
      status.textContent = search.getAttribute("data-searching");
      results.replaceChildren();
      fetch(search.getAttribute("data-url") + "?q=" + encodeURIComponent(q), {
        credentials: "same-origin", headers: { Accept: "application/json" }
      })
        .then(function (res) { return res.json().then(function (body) { return { ok: res.ok, body: body }; }); })
        .then(function (answer) {
          if (!answer.ok) { status.textContent = answer.body.error ? answer.body.error.message : ""; return; }
          var places = answer.body.results;
          status.textContent = places.length ? "" : search.getAttribute("data-none");
          places.forEach(function (p) {
            var li = document.createElement("li");
            var b = document.createElement("button");
            b.type = "button";
            b.className = "btn";
            b.textContent = p.label;
            b.addEventListener("click", function () {
              if (!map) draw();
              place([p.lat, p.lng], true);
              var line1 = document.getElementById("id_new_line1");
              if (line1 && !line1.value) line1.value = p.label;
              results.replaceChildren();
            });
            li.appendChild(b);
            results.appendChild(li);
          });
        })
        .catch(function () { status.textContent = search.getAttribute("data-none"); });
    };
    search.querySelector("[data-search-go]").addEventListener("click", run);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); run(); }
    });
  }
})();
