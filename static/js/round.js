// The vendor's round: each tap is kept on the phone (localStorage) with an id made here, sent at
// once when online and replayed when the connection is back; the server acts on an id once, so a
// tap sent twice (a lost answer, two tabs) is still one delivery. Every minute the stops are put
// in order again from where the phone is.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("round-config").textContent);
  var text = document.getElementById("round-text").dataset;
  var QUEUE_KEY = "o2o.roundQueue", BATCH = 100;
  var list = document.getElementById("round-stops");
  var done = document.getElementById("round-done");
  var sync = document.getElementById("round-sync");
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var flushing = false, here = null;
  var parked = {};  // tap id -> the stop's card, until the server has answered

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function queue() {
    try { return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); } catch (e) { return []; }
  }
  function saveQueue(q) { localStorage.setItem(QUEUE_KEY, JSON.stringify(q)); showState(q); }
  function showState(q) {
    sync.classList.remove("ok");
    if (!q.length) { sync.textContent = ""; return; }
    sync.textContent = q.length === 1 ? text.waitingOne : text.waitingOther.replace("{count}", q.length);
  }
  function renumber() {
    if (!list) return;
    var cards = list.querySelectorAll("li.stop");
    Array.prototype.forEach.call(cards, function (li, i) { li.querySelector(".stop-no").textContent = String(i + 1); });
    var left = document.getElementById("left-count");
    var plural = new Intl.PluralRules(document.documentElement.lang || undefined).select(cards.length);
    if (left) left.textContent = (plural === "one" ? text.leftOne : text.leftOther).replace("{count}", cards.length);
  }
  function doneLine(orderId, label, queued, tapId) {
    var none = done.querySelector(".none");
    if (none) none.remove();
    var li = (tapId && done.querySelector('li[data-tap="' + tapId + '"]')) || document.createElement("li");
    li.dataset.order = orderId;
    if (tapId) li.dataset.tap = tapId;
    li.className = queued ? "queued" : "";
    li.textContent = "#" + orderId + " — " + label;
    if (!li.parentNode) done.insertBefore(li, done.firstChild);
    return li;
  }

  function tapFrom(submitter) {
    // The button says what and which stop ("delivered:<order>"); the stop's fields carry its id.
    var parts = submitter.value.split(":"), id = parts[1];
    var card = submitter.closest("li.stop");
    function val(name) { var el = card.querySelector("[name='" + name + "-" + id + "']"); return el ? el.value : ""; }
    var well = card.querySelector("[name='wellbeing-" + id + "']:checked");
    var piled = card.querySelector("[name='uncollected-" + id + "']");
    return {
      id: newId(),
      order_id: Number(id),
      action: parts[0],
      tapped_at: new Date().toISOString(),
      code: val("code"),
      wellbeing: well ? well.value : "",
      uncollected: !!(piled && piled.checked),
      note: val("note")
    };
  }
  function park(tap) {
    var card = list && list.querySelector('li.stop[data-order="' + tap.order_id + '"]');
    var where = card ? card.querySelector(".stop-address").textContent + " — " : "";
    if (card) { parked[tap.id] = card; card.remove(); renumber(); }
    var label = where + (tap.action === "delivered" ? "✓ " : "⌂ ") + text.queued;
    doneLine(tap.order_id, label, true, tap.id);
  }
  function unpark(tapId, message) {
    var card = parked[tapId];
    delete parked[tapId];
    var line = done.querySelector('li[data-tap="' + tapId + '"]');
    if (line) line.remove();
    if (!card || !list) return;
    list.insertBefore(card, list.firstChild);
    card.querySelector(".stop-error").textContent = text.refused + " " + message;
    renumber();
  }

  function flush() {
    var q = queue();
    // Offline (as the phone knows): keep them; the "online" event sends them.
    if (flushing || !q.length || navigator.onLine === false) { showState(q); return Promise.resolve(); }
    flushing = true;
    sync.textContent = text.sending;
    var batch = q.slice(0, BATCH);
    return fetch(cfg.actionsUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify({ actions: batch })
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (body) {
      var answered = {};
      (body.results || []).forEach(function (res) {
        answered[res.id] = true;
        if (res.error || res.outcome === "refused") {
          var msg = res.error ? Object.keys(res.error).map(function (k) { return [].concat(res.error[k]).join(" "); }).join(" ") : res.detail;
          unpark(res.id, msg);
        } else {
          var card = parked[res.id];
          delete parked[res.id];
          var where = card ? card.querySelector(".stop-address").textContent + " — " : "";
          doneLine(res.order_id, where + res.outcome_label, false, res.id);
        }
      });
      var rest = queue().filter(function (t) { return !answered[t.id]; });
      saveQueue(rest);
      if (!rest.length) { sync.textContent = text.sent; sync.classList.add("ok"); }
    }).catch(function () {
      showState(queue());  // offline or the server is away: the taps wait
    }).then(function () {
      flushing = false;
      if (queue().length && navigator.onLine !== false) setTimeout(flush, 10000);
    });
  }

  var form = document.getElementById("round-form");
  if (form) {
    form.addEventListener("submit", function (e) {
      if (!e.submitter || !e.submitter.value) return;
      e.preventDefault();
      var tap = tapFrom(e.submitter);
      var q = queue();
      if (!q.some(function (t) { return t.id === tap.id; })) q.push(tap);
      saveQueue(q);
      park(tap);
      flush();
    });
  }

  // Taps still waiting from before a reload: their stops stay off the list.
  queue().forEach(park);

  // Put the stops in order from where the phone is (nearest next), once a minute when online.
  function reorder() {
    if (!list || navigator.onLine === false || queue().length) return;
    var url = cfg.apiUrl + (here ? "?lat=" + here[0] + "&lng=" + here[1] : "");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || queue().length) return;
        var cards = {};
        Array.prototype.forEach.call(list.querySelectorAll("li.stop"), function (li) { cards[li.dataset.order] = li; });
        body.stops.forEach(function (stop) {
          var li = cards[String(stop.order_id)];
          if (li) { list.appendChild(li); delete cards[String(stop.order_id)]; }
        });
        Object.keys(cards).forEach(function (id) { cards[id].remove(); });  // settled elsewhere
        renumber();
      }).catch(function () {});
  }
  if (navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(function (pos) {
      here = [pos.coords.latitude.toFixed(5), pos.coords.longitude.toFixed(5)];
      reorder();
    }, function () {}, { maximumAge: 60000, timeout: 15000 });
  }
  setInterval(function () {
    if (navigator.geolocation) {
      navigator.geolocation.getCurrentPosition(function (pos) {
        here = [pos.coords.latitude.toFixed(5), pos.coords.longitude.toFixed(5)];
      }, function () {}, { maximumAge: 60000, timeout: 15000 });
    }
    reorder();
  }, 60000);

  window.addEventListener("online", flush);
  setInterval(flush, 15000);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(cfg.swUrl, { scope: cfg.swUrl.replace(/sw\.js$/, "") }).catch(function () {});
  }
  flush();
})();
