// The vendor's on-shift page: follow the phone's location and send pings over a websocket; while
// the connection is down, keep them on the phone and send them as one batch when it is back.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("shift-config").textContent);
  var t = JSON.parse(document.getElementById("shift-i18n").textContent);
  var text = document.getElementById("shift-text").dataset;  // whole sentences, {name} slots
  var lang = document.documentElement.lang || undefined;
  var plural = new Intl.PluralRules(lang);
  var csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  var QUEUE_KEY = "o2o.pingQueue", MAX_QUEUE = 2000, MIN_GAP_MS = 3000;
  var onShift = cfg.onShift, socket = null, watchId = null, wakeLock = null;
  var lastSent = 0, flushing = false, pending = null, pendingTimer = null;
  var unacked = {};  // ts -> ping sent on the socket, until the server answers
  // Whether the vendor was told positions are waiting (so is told when they are sent): not for
  // the first fix, kept only until the socket's first connection.
  var everConnected = false, toldWaiting = false;
  var el = function (id) { return document.getElementById(id); };
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (slot, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : slot;
    });
  }
  function clock() { return new Date().toLocaleTimeString(lang, { timeZone: cfg.timeZone }); }
  function sentNow() { el("last-ping").textContent = clock(); }
  function pick(one, other, n) { return fill(plural.select(n) === "one" ? one : other, { count: n }); }
  // The server took a ping: whatever stood in the way (no fix, a refusal) is over.
  function flowing() { el("geo-error").textContent = ""; el("shift-error").textContent = ""; }
  function geoFailed(err) {
    // The real reason (GeolocationPositionError): denied, no fix, or no fix yet.
    var code = err && err.code;
    el("geo-error").textContent = code === 1 ? t.geoDenied : code === 2 ? t.geoUnavailable
      : code === 3 ? t.geoTimeout : t.noGeo;
  }

  function queue() {
    try { return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); } catch (e) { return []; }
  }
  function saveQueue(q) {
    localStorage.setItem(QUEUE_KEY, JSON.stringify(q.slice(-MAX_QUEUE)));
    var n = Math.min(q.length, MAX_QUEUE);
    el("queue-size").textContent = String(n);
    // "3 positions waiting to be sent" while they wait; what became of them once sent stays.
    if (n && everConnected) {
      el("queue-state").textContent = pick(text.waitingOne, text.waitingOther, n);
      toldWaiting = true;
    }
  }
  function setConn(text) { el("conn-state").textContent = text; }
  function render() {
    el("shift-state").textContent = onShift ? t.onShift : t.offShift;
    var b = el("shift-toggle");
    b.textContent = onShift ? t.goOff : t.goOn;
    b.classList.toggle("off", onShift);
    saveQueue(queue());
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    });
  }

  function flush() {
    // Send what waited on the phone, oldest first, in chunks the server accepts.
    var q = queue();
    if (flushing || !q.length || !navigator.onLine) return;
    flushing = true;
    var chunk = q.slice(0, 500);
    post(cfg.batchUrl, { pings: chunk }).then(function (res) {
      if (!res.ok && res.status !== 422) return;
      return res.json().then(function (body) {
        var rest = queue().slice(chunk.length);  // accepted or refused for good: not retried
        saveQueue(rest);
        var said = [];
        if (body.accepted) {
          sentNow();
          flowing();
          loadTrack();
          said.push(fill(text.queueSent, { time: clock() }));
        }
        if (body.rejected) said.push(pick(text.refusedOne, text.refusedOther, body.rejected));
        if (rest.length) said = [pick(text.waitingOne, text.waitingOther, rest.length)];
        if (toldWaiting || body.rejected) el("queue-state").textContent = said.join(" ");
        toldWaiting = rest.length > 0 && toldWaiting;
      });
    }).catch(function () {}).then(function () {
      flushing = false;
      if (queue().length && socket && socket.open()) setTimeout(flush, 500);
    });
  }

  function connect() {
    if (!onShift) return;
    setConn(t.connecting);
    var live = socket = O2O.live(cfg.ws, {
      open: function () {
        everConnected = true;
        setConn(t.online);
        flush();  // what waited on the phone goes first
      },
      message: onMessage,
      close: function () {
        if (socket !== live) return;  // replaced since (off and on again quickly)
        unacked = {};
        setConn(onShift ? t.offline : text.notConnected);  // else: closed by going off shift
      },
      stop: function (reason) {
        // Not logged in, or may not sell now (suspended): retrying would not help. Say why.
        socket = null;
        el("shift-error").textContent = reason || t.error;
      }
    });
  }
  function onMessage(msg) {
    var ping = unacked[msg.ts];
    delete unacked[msg.ts];
    if (msg.type === "ack") {
      sentNow();
      flowing();
      if (ping) addToTrack([ping.lat, ping.lng]);
    } else if (msg.type === "rejected") {
      el("shift-error").textContent = fill(text.rejected, { reason: msg.message });
    } else if (msg.type === "error" && ping) {
      // Not refused: the server could not record it now. Keep it for the next batch.
      var q = queue(); q.push(ping); saveQueue(q);
    }
  }

  function onPosition(p) {
    el("geo-error").textContent = "";  // the phone knows where it is again
    var ping = { lat: p.coords.latitude, lng: p.coords.longitude,
                 accuracy: Math.max(1, p.coords.accuracy || 1), ts: Math.round(p.timestamp || Date.now()) };
    clearTimeout(pendingTimer);
    if (ping.ts - lastSent < MIN_GAP_MS) {
      // Too soon after the last one: keep the newest fix and send it when the gap is up, so the
      // last move before the phone goes quiet is never lost. The phone has had no newer fix by
      // then, so it is where the vendor still is: stamped with that moment.
      pending = ping;
      pendingTimer = setTimeout(function () {
        if (pending === null || watchId === null) return;
        var late = pending;
        pending = null;
        late.ts = Math.max(late.ts, lastSent + MIN_GAP_MS, Date.now());
        send(late);
      }, Math.max(0, lastSent + MIN_GAP_MS - Date.now()));
      return;
    }
    pending = null;
    send(ping);
  }

  function send(ping) {
    lastSent = ping.ts;
    if (socket && socket.open() && !queue().length) {
      unacked[ping.ts] = ping;
      socket.send(Object.assign({ type: "ping" }, ping));
    } else {
      var q = queue(); q.push(ping); saveQueue(q);
      if (socket && socket.open()) flush();
    }
  }

  function startWatching() {
    if (!navigator.geolocation) { geoFailed(null); return; }
    watchId = navigator.geolocation.watchPosition(onPosition, geoFailed,
      { enableHighAccuracy: true, maximumAge: 5000, timeout: 20000 });
    requestWakeLock();
    connect();
  }
  function stopWatching() {
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    watchId = null;
    clearTimeout(pendingTimer);
    pending = null;
    if (socket) { socket.close(); socket = null; }
    if (wakeLock) { wakeLock.release().catch(function () {}); wakeLock = null; }
    el("geo-error").textContent = "";  // no longer asking the phone
    setConn(text.notConnected);
  }
  function requestWakeLock() {
    if (!("wakeLock" in navigator) || !onShift) return;
    navigator.wakeLock.request("screen").then(function (l) { wakeLock = l; }).catch(function () {});
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && onShift) requestWakeLock();
  });
  window.addEventListener("online", flush);

  el("shift-toggle").addEventListener("click", function () {
    var button = this, want = !onShift;
    button.setAttribute("aria-busy", "true");
    post(cfg.shiftUrl, { on_shift: want }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error((body.error && body.error.message) || t.error);
        onShift = body.on_shift;
        render();
        if (onShift) startWatching(); else stopWatching();
      });
    }).catch(function (err) {
      el("shift-error").textContent = err.message || t.error;
    }).then(function () { button.removeAttribute("aria-busy"); });
  });

  // Today's own track (exact, visible only to this vendor).
  var trackMap = L.map("track-map").setView(cfg.centre, 15);
  L.tileLayer(cfg.tiles, { attribution: cfg.attribution, maxZoom: 19 }).addTo(trackMap);
  var line = L.polyline([], { color: "#0b7a53", weight: 4 }).addTo(trackMap);
  // Where the phone last sent: one point of a track draws nothing, and tiles may not load.
  var here = L.circleMarker(cfg.centre, { radius: 8, color: "#fff", weight: 3, fillColor: "#0b7a53", fillOpacity: 1 });
  function addToTrack(point) {
    line.addLatLng(point);
    here.setLatLng(point);
    if (!trackMap.hasLayer(here)) { here.addTo(trackMap); trackMap.setView(point, 16); }
    else if (!trackMap.getBounds().contains(point)) trackMap.panTo(point);
  }
  var fitted = false;
  function loadTrack() {
    fetch(cfg.trackUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (body) {
        var pts = (body.track || []).map(function (p) { return [p.lat, p.lng]; });
        line.setLatLngs(pts);
        if (!pts.length) return;
        here.setLatLng(pts[pts.length - 1]).addTo(trackMap);
        if (!fitted) trackMap.fitBounds(line.getBounds(), { maxZoom: 16, padding: [20, 20] });
        fitted = true;  // later refreshes leave the vendor's own panning and zoom alone
      }).catch(function () {});
  }
  loadTrack();
  setInterval(loadTrack, 30000);

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(cfg.swUrl, { scope: cfg.swUrl.replace(/sw\.js$/, "") }).catch(function () {});
  }
  render();
  if (onShift) startWatching(); else setConn(text.notConnected);
})();
