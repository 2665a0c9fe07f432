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
      if (msg.by === "staff" && msg.status === "cancelled") {
        // The card leaves the list: say why, where it stays until the next one.
        var text = t.staffEnded.replace("{n}", msg.order_id);
        notice.textContent = text;
        notice.hidden = false;
        announce.textContent = text;
      }
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
