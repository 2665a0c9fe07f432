// The live map: subscribe to the viewport over a websocket, draw each cart as its H3 cell.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("map-config").textContent);
  var t = JSON.parse(document.getElementById("map-i18n").textContent);
  var statusEl = document.getElementById("map-status");
  var listEl = document.getElementById("vendor-list");
  var countEl = document.getElementById("list-count");
  var emptyEl = document.getElementById("list-empty");
  var filterEl = document.getElementById("product-filter");
  var vendors = {};   // id -> payload
  var shapes = {};    // id -> L.polygon
  var origin = null;  // "near me" point: used in this page only, never sent anywhere
  var socket = null, retry = 0, viewportTimer = null;

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

  function setStatus(text, state) {
    statusEl.textContent = text;
    statusEl.className = "map-status " + (state || "");
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
    poly.bindTooltip(v.name);
    poly.addTo(map);
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
    if (!iso) return "";
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 60 ? s + "s" : Math.round(s / 60) + "m";
  }

  function renderList() {
    var centre = map.getCenter();
    var point = origin || [centre.lat, centre.lng];
    var items = Object.keys(vendors).map(function (id) { return vendors[id]; }).filter(visible);
    items.sort(function (a, b) { return distanceFrom(point, a) - distanceFrom(point, b); });
    listEl.textContent = "";
    items.forEach(function (v) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = v.url;
      if (v.presence === "stale") a.className = "stale";
      var name = document.createElement("strong");
      name.textContent = v.name;
      var meta = document.createElement("span");
      meta.className = "presence";
      var d = Math.round(distanceFrom(point, v) / 100) * 100;
      meta.textContent = (t[v.presence] || v.presence) + " · ~" +
        (d >= 1000 ? (d / 1000).toFixed(1) + " km" : d + " m") + " " + t.away +
        " · " + t.seen + " " + ago(v.last_seen);
      a.appendChild(name);
      a.appendChild(meta);
      li.appendChild(a);
      listEl.appendChild(li);
    });
    countEl.textContent = "(" + items.length + ")";
    emptyEl.hidden = items.length !== 0;
  }

  function upsert(v) { vendors[v.id] = v; draw(v); }
  function remove(id) {
    if (shapes[id]) { map.removeLayer(shapes[id]); delete shapes[id]; }
    delete vendors[id];
  }

  function sendViewport() {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    var b = map.getBounds();
    socket.send(JSON.stringify({
      type: "viewport", bbox: [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]
    }));
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    setStatus(retry ? t.reconnecting : t.connecting, retry ? "down" : "");
    socket = new WebSocket(scheme + location.host + cfg.ws);
    socket.onopen = function () { retry = 0; sendViewport(); };
    socket.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      if (msg.type === "snapshot") {
        // A snapshot is the truth for the cells it covers: anything else there is gone.
        Object.keys(vendors).forEach(remove);
        msg.vendors.forEach(upsert);
        setStatus(t.connected + " · " + msg.vendors.length + " " + t.carts, "live");
      } else if (msg.type === "upsert") {
        upsert(msg.vendor);
      } else if (msg.type === "remove") {
        var v = vendors[msg.id];
        if (v && v.coarse === msg.coarse) remove(msg.id);
      } else if (msg.type === "zoom_in") {
        Object.keys(vendors).forEach(remove);
        setStatus(t.zoomIn, "");
      }
      renderList();
      document.body.dataset.mapReady = "1";
    };
    socket.onclose = function () {
      setStatus(t.reconnecting, "down");
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, Math.min(30000, 500 * Math.pow(2, retry)) * (0.5 + Math.random() / 2));
    };
  }

  map.on("moveend", function () {
    clearTimeout(viewportTimer);
    viewportTimer = setTimeout(sendViewport, 250);
    renderList();
  });
  filterEl.addEventListener("change", function () {
    Object.keys(vendors).forEach(function (id) { draw(vendors[id]); });
    renderList();
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
  setInterval(renderList, 30000);  // keep "seen … ago" fresh
  connect();
})();
