// The live map: subscribe to the viewport over a websocket, draw each cart as its H3 cell.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("map-config").textContent);
  var t = JSON.parse(document.getElementById("map-i18n").textContent);
  var text = document.getElementById("map-text").dataset;  // whole sentences, {name} slots
  var lang = document.documentElement.lang || undefined;
  var plural = new Intl.PluralRules(lang);
  var metres = new Intl.NumberFormat(lang, { style: "unit", unit: "meter", maximumFractionDigits: 0 });
  var kilometres = new Intl.NumberFormat(lang, { style: "unit", unit: "kilometer", maximumFractionDigits: 1 });
  var relative = new Intl.RelativeTimeFormat(lang, { numeric: "always" });
  var statusEl = document.getElementById("map-status");
  var listEl = document.getElementById("vendor-list");
  var countEl = document.getElementById("list-count");
  var emptyEl = document.getElementById("list-empty");
  var filterEl = document.getElementById("product-filter");
  var vendors = {};   // id -> payload
  var shapes = {};    // id -> L.polygon
  var origin = null;  // "near me" point: used in this page only, never sent anywhere
  var socket = null, viewportTimer = null, live = false;
  var missTimer = null, missesSent = [];  // {product, centre}: one beacon per product per place
  var MISS_NEAR_M = 1000, MISS_MOVE_M = 500;
  var csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");

  var map = L.map("map", { zoomControl: true }).setView(cfg.centre, cfg.zoom);
  var tiles = L.tileLayer(cfg.tiles, { attribution: cfg.attribution, maxZoom: 19 });
  var tileErrors = 0, tileNotice = null;
  tiles.on("tileerror", function () {
    tileErrors += 1;
    if (tileErrors === 3 && !tileNotice) {
      tileNotice = document.createElement("p");
      tileNotice.className = "notice";
      tileNotice.textContent = t.tilesDown;
      statusEl.insertAdjacentElement("afterend", tileNotice);
    }
  });
  tiles.addTo(map);

  function setStatus(message, state) {
    if (statusEl.textContent !== message) statusEl.textContent = message;  // a live region
    statusEl.className = "map-status " + (state || "");
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (slot, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : slot;
    });
  }

  function setLive(n) {
    // n: the carts listed (renderList), so the status line and "Carts in view (n)" always agree.
    var template = plural.select(n) === "one" ? text.liveOne : text.liveOther;
    setStatus(fill(template, { count: n }), "live");
  }

  function colour(presence) {
    return presence === "stale" ? "#8a949c" : presence === "stationary" ? "#c77d00" : "#0b7a53";
  }

  function visible(v) {
    var want = filterEl.value;
    return !want || v.products.indexOf(parseInt(want, 10)) !== -1;
  }

  function draw(v) {
    var old = shapes[v.id];
    if (old) { map.removeLayer(old); delete shapes[v.id]; }
    if (!visible(v)) return;
    var c = colour(v.presence);
    var poly = L.polygon(v.boundary, { color: c, weight: 2, fillColor: c, fillOpacity: 0.35 });
    var link = document.createElement("a");
    link.href = v.url;
    link.textContent = v.name;
    poly.bindPopup(link);
    // An element, never a string: Leaflet writes a string tooltip as HTML, and a cart's name is
    // whatever its vendor typed.
    var tip = document.createElement("span");
    tip.textContent = v.name;
    poly.bindTooltip(tip, { direction: "top" });
    poly.addTo(map);
    var path = poly.getElement();  // what the tests (and the curious) can read: no exact spot
    if (path) { path.setAttribute("data-vendor", v.id); path.setAttribute("data-cell", v.cell); }
    shapes[v.id] = poly;
  }

  function distanceFrom(point, v) {
    var R = 6371000, toRad = Math.PI / 180;
    var dLat = (v.centre[0] - point[0]) * toRad, dLng = (v.centre[1] - point[1]) * toRad;
    var a = Math.sin(dLat / 2) * Math.sin(dLat / 2) + Math.cos(point[0] * toRad) *
      Math.cos(v.centre[0] * toRad) * Math.sin(dLng / 2) * Math.sin(dLng / 2);
    return 2 * R * Math.asin(Math.sqrt(a));
  }

  function ago(iso) {
    // "3분 전" / "3 minutes ago"; coarse enough to stay true between refreshes (every 10 s).
    var s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    if (s < 10) return relative.format(-Math.max(1, s), "second");
    if (s < 60) return relative.format(-Math.floor(s / 10) * 10, "second");
    if (s < 3600) return relative.format(-Math.floor(s / 60), "minute");
    return relative.format(-Math.floor(s / 3600), "hour");
  }

  function distance(m) {
    var d = Math.round(m / 100) * 100;
    return d >= 1000 ? kilometres.format(d / 1000) : metres.format(Math.max(100, d));
  }

  function describe(v, point) {
    var values = { presence: t[v.presence] || v.presence, distance: distance(distanceFrom(point, v)) };
    if (!v.last_seen) return fill(text.metaUnseen, values);
    values.ago = ago(v.last_seen);
    return fill(text.metaSeen, values);
  }

  function listPoint() {
    var centre = map.getCenter();
    return origin || [centre.lat, centre.lng];
  }

  function listed() {
    // The one definition of what is counted: carts whose area is in the map's view and that have
    // the chosen product. The socket also sends the carts around the view (whole H3 groups).
    var bounds = map.getBounds();
    return Object.keys(vendors).map(function (id) { return vendors[id]; }).filter(function (v) {
      return visible(v) && bounds.intersects(L.latLngBounds(v.boundary));
    });
  }

  function renderList() {
    var point = listPoint();
    var items = listed();
    items.sort(function (a, b) { return distanceFrom(point, a) - distanceFrom(point, b); });
    listEl.textContent = "";
    items.forEach(function (v) {
      var li = document.createElement("li");
      li.setAttribute("data-vendor", v.id);
      li.setAttribute("data-cell", v.cell);
      li.setAttribute("data-presence", v.presence);
      var a = document.createElement("a");
      a.href = v.url;
      if (v.presence === "stale") a.className = "stale";
      var name = document.createElement("strong");
      name.textContent = v.name;
      var meta = document.createElement("span");
      meta.className = "presence";
      meta.textContent = describe(v, point);
      a.appendChild(name);
      a.appendChild(meta);
      li.appendChild(a);
      listEl.appendChild(li);
    });
    countEl.textContent = "(" + items.length + ")";
    emptyEl.hidden = items.length !== 0;
    if (live) setLive(items.length);
  }

  function refreshTimes() {
    // Only the "seen … ago" texts: rebuilding the list would take a focused link away.
    var point = listPoint();
    listEl.querySelectorAll("li[data-vendor]").forEach(function (li) {
      var v = vendors[li.getAttribute("data-vendor")];
      var meta = li.querySelector(".presence");
      if (v && meta) meta.textContent = describe(v, point);
    });
  }

  // A product picked that no cart near has: tell the platform once (insights, "misses"). Only the
  // map's centre is sent, and the server keeps only its area; it checks the carts near itself.
  function checkMiss() {
    clearTimeout(missTimer);
    missTimer = setTimeout(sendMiss, 1000);
  }
  function sendMiss() {
    var want = parseInt(filterEl.value, 10);
    if (!want || !live || !cfg.missUrl) return;
    var c = map.getCenter(), centre = [c.lat, c.lng];
    if (listed().length) return;
    var near = Object.keys(vendors).some(function (id) {
      var v = vendors[id];
      return v.products.indexOf(want) !== -1 && distanceFrom(centre, v) <= MISS_NEAR_M;
    });
    if (near) return;
    var again = missesSent.some(function (s) {
      return s.product === want && distanceFrom(s.centre, { centre: centre }) < MISS_MOVE_M;
    });
    if (again) return;
    missesSent.push({ product: want, centre: centre });
    var headers = { "Content-Type": "application/json" };
    if (csrfInput) headers["X-CSRFToken"] = csrfInput.value;
    fetch(cfg.missUrl, {
      method: "POST", headers: headers, credentials: "same-origin", keepalive: true,
      body: JSON.stringify({ product_id: want, lat: centre[0], lng: centre[1] })
    }).catch(function () { /* best effort: a lost beacon is a lost count */ });
  }

  // Favourite carts the customer asked to be told about (cfg.favourites): a polite notice when one
  // is on the map within cfg.nearM of them, once per cart and shift in this tab (sessionStorage).
  var favourites = {};
  (cfg.favourites || []).forEach(function (f) { favourites[f.id] = f; });
  var nearEl = document.getElementById("near-notices");

  function nearPoint(v) {
    // Where the customer is: "near me" or a chosen address; else their nearest saved address;
    // else the middle of the map.
    if (origin) return origin;
    var best = null;
    (cfg.addresses || []).forEach(function (a) {
      var p = [a.lat, a.lng];
      if (!best || distanceFrom(p, v) < distanceFrom(best, v)) best = p;
    });
    if (best) return best;
    var c = map.getCenter();
    return [c.lat, c.lng];
  }

  function seen(key) {
    try { return sessionStorage.getItem(key) !== null; } catch (e) { return false; }
  }
  function remember(key) {
    try { sessionStorage.setItem(key, "1"); } catch (e) { /* private mode: once per page */ }
  }

  function checkNear(v) {
    var f = favourites[v.id];
    if (!f || !nearEl) return;
    var key = "o2o.near." + v.id + "." + (f.shift || "");
    if (seen(key) || nearEl.querySelector("[data-vendor='" + v.id + "']")) return;
    var d = distanceFrom(nearPoint(v), v);
    if (d > cfg.nearM) return;
    remember(key);
    var box = document.createElement("p");
    box.className = "near-notice";
    box.setAttribute("data-vendor", v.id);
    var say = document.createElement("a");
    say.href = v.url;
    say.textContent = fill(text.near, { name: f.name, distance: distance(d) });
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn";
    close.setAttribute("aria-label", t.dismiss);
    close.textContent = "×";
    close.addEventListener("click", function () { box.remove(); });
    box.appendChild(say);
    box.appendChild(close);
    nearEl.appendChild(box);
  }

  function upsert(v) { vendors[v.id] = v; draw(v); checkNear(v); }
  function remove(id) {
    if (shapes[id]) { map.removeLayer(shapes[id]); delete shapes[id]; }
    delete vendors[id];
  }

  function applyDelta(d) {
    if (d.type === "upsert") {
      upsert(d.vendor);
    } else if (d.type === "remove") {
      // Only where the client still shows it: a cart that moved on is already drawn elsewhere.
      var v = vendors[d.id];
      if (v && v.coarse === d.coarse) remove(d.id);
    }
  }

  function sendViewport() {
    if (!socket) return;
    var b = map.getBounds();
    socket.send({ type: "viewport", bbox: [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()] });
  }

  function connect() {
    live = false;
    setStatus(t.connecting, "");
    socket = O2O.live(cfg.ws, { open: sendViewport, message: onMessage, close: onClose, stop: onStop });
  }
  function onMessage(msg) {
    if (msg.type === "snapshot") {
      // A snapshot is the truth for the cells it covers: anything else there is gone.
      Object.keys(vendors).forEach(remove);
      msg.vendors.forEach(upsert);
      live = true;
    } else if (msg.type === "batch") {
      // The deltas of the last ~100 ms, the last word about each cart, oldest first.
      msg.events.forEach(applyDelta);
    } else if (msg.type === "upsert" || msg.type === "remove") {
      applyDelta(msg);
    } else if (msg.type === "zoom_in") {
      Object.keys(vendors).forEach(remove);
      live = false;
      setStatus(t.zoomIn, "");
    }
    renderList();
    if (msg.type === "snapshot") checkMiss();
    document.body.dataset.mapReady = "1";
  }
  function onClose() {
    live = false;
    setStatus(t.reconnecting, "down");
  }
  function onStop(reason) {
    setStatus(reason || t.reconnecting, "down");
  }

  map.on("moveend", function () {
    clearTimeout(viewportTimer);
    viewportTimer = setTimeout(sendViewport, 250);
    renderList();
    checkMiss();
  });
  filterEl.addEventListener("change", function () {
    Object.keys(vendors).forEach(function (id) { draw(vendors[id]); });
    renderList();
    checkMiss();
  });
  document.getElementById("near-me").addEventListener("click", function () {
    if (!navigator.geolocation) { setStatus(t.noGeo, ""); return; }
    navigator.geolocation.getCurrentPosition(function (p) {
      origin = [p.coords.latitude, p.coords.longitude];
      map.setView(origin, 16);
    }, function () { setStatus(t.noGeo, ""); }, { enableHighAccuracy: false, timeout: 10000 });
  });
  var addressEl = document.getElementById("address-select");
  if (addressEl) {
    addressEl.addEventListener("change", function () {
      var a = cfg.addresses[parseInt(addressEl.value, 10)];
      if (a) { origin = [a.lat, a.lng]; map.setView(origin, 16); }
    });
  }
  setInterval(refreshTimes, 10000);  // keep "seen … ago" true
  connect();
})();
