// The vendor's order inbox: live over a websocket. A new order rings (a short beep made with
// WebAudio, no sound file) and vibrates where the phone allows; every change reloads the list, and
// so does a reconnect (messages sent while the phone was away are gone).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("inbox-config").textContent);
  var t = JSON.parse(document.getElementById("inbox-i18n").textContent);
  var list = document.getElementById("inbox-list");
  var state = document.getElementById("live-state");
  var announce = document.getElementById("inbox-announce");
  var notice = document.getElementById("inbox-notice");
  var soundButton = document.getElementById("sound-on");
  var SOUND_KEY = "o2o.inboxSound";
  var audio = null, pending = false, loading = false;

  // --- sound: browsers start audio only after a tap, so the first tap anywhere turns it on ----
  function audioContext() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended") audio.resume();
    return audio;
  }
  function beep() {
    var ctx = audio;
    if (!ctx || ctx.state !== "running") return;
    [0, 0.25].forEach(function (at) {
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, ctx.currentTime + at);
      gain.gain.exponentialRampToValueAtTime(0.3, ctx.currentTime + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + at + 0.18);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.2);
    });
  }
  function soundOn() {
    if (!audioContext()) return;
    try { localStorage.setItem(SOUND_KEY, "1"); } catch (e) { /* private mode */ }
    soundButton.hidden = true;
  }
  if (window.AudioContext || window.webkitAudioContext) {
    soundButton.hidden = false;
    soundButton.addEventListener("click", function () { soundOn(); beep(); state.textContent = t.soundOn; });
    var wanted = false;
    try { wanted = localStorage.getItem(SOUND_KEY) === "1"; } catch (e) { wanted = false; }
    if (wanted) {
      document.addEventListener("pointerdown", soundOn, { once: true });
      document.addEventListener("keydown", soundOn, { once: true });
    }
  }

  function ring() {
    beep();
    if (navigator.vibrate) { try { navigator.vibrate([200, 100, 200]); } catch (e) { /* not allowed */ } }
    announce.textContent = t.newOrder;
  }

  // --- an order that ended (cancelled, expired…) -------------------------------------------------
  var ENDED = ["cancelled", "expired", "rejected", "failed", "refunded"];
  function endedText(msg) {
    var key = msg.status === "expired" ? "expiredEnded"
      : msg.status === "cancelled" && msg.by === "staff" ? "staffEnded"
      : msg.status === "cancelled" && msg.by === "customer" ? "customerEnded" : "otherEnded";
    return t[key].replace("{n}", msg.order_id);
  }
  function ended(msg) {
    // Said where it stays until the next one (the card leaves the list), and at once on the card
    // itself: the list may wait to reload while the vendor is typing in it.
    var text = endedText(msg);
    notice.textContent = text;
    notice.hidden = false;
    announce.textContent = text;
    var card = document.getElementById("order-" + msg.order_id);
    if (!card) return;
    card.setAttribute("data-status", msg.status);
    card.classList.add("inbox-order-ended");
    var note = card.querySelector(".inbox-ended-note");
    if (!note) {
      note = document.createElement("p");
      note.className = "note ended inbox-ended-note";
      note.setAttribute("data-testid", "card-ended");
      var head = card.querySelector("header");
      if (head) head.after(note); else card.prepend(note);
    }
    note.textContent = text;
    var deadline = card.querySelector(".inbox-deadline");  // "accept by" means nothing now
    if (deadline) deadline.remove();
    card.querySelectorAll("button, input").forEach(function (el) { el.disabled = true; });
  }

  // --- the list ---------------------------------------------------------------------------------
  var submitting = false;
  // A form sent from the list: the page is about to be replaced by the answer. Replacing the list
  // now would take the form out of the document and could cancel the vendor's tap.
  list.addEventListener("submit", function () { submitting = true; }, true);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { submitting = false; refresh(); }  // back from the answer (bfcache)
  });
  function busy() {
    // Don't pull the list from under someone typing an ETA, a reason or a code.
    var el = document.activeElement;
    return submitting ||
      list.contains(el) && (el.tagName === "INPUT" || el.tagName === "TEXTAREA") ||
      !!list.querySelector("details[open]");
  }
  function refresh() {
    if (busy()) { pending = true; return; }
    if (loading) { pending = true; return; }
    loading = true;
    pending = false;
    fetch(cfg.listUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (res) { return res.ok ? res.text() : Promise.reject(res.status); })
      .then(function (html) { if (!busy()) list.innerHTML = html; else pending = true; })
      .catch(function () { pending = true; })
      .then(function () { loading = false; });
  }
  list.addEventListener("focusout", function () { setTimeout(function () { if (pending) refresh(); }, 200); });
  list.addEventListener("toggle", function () { if (pending) refresh(); }, true);

  O2O.live(cfg.ws, {
    open: function () {
      state.textContent = t.live;
      state.className = "live-state on";
      refresh();  // a snapshot: changes sent while the phone was away are gone
    },
    message: function (msg) {
      if (msg.type !== "order.changed") return;
      if (msg.status === "placed") ring();
      else if (ENDED.indexOf(msg.status) >= 0) ended(msg);
      else if (announce.textContent === t.newOrder) announce.textContent = "";  // old news now
      refresh();
    },
    close: function () {
      state.textContent = t.reconnecting;
      state.className = "live-state down";
    },
    stop: function (reason) {
      // Logged out, or not an approved vendor any more: say why instead of "reconnecting".
      state.textContent = reason || t.reconnecting;
      state.className = "live-state down";
    }
  });
})();
