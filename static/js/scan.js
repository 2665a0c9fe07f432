// The vendor's scanner: the phone's camera reads the customer's hand-over QR and the page posts it
// (with its CSRF token) to the same URL, which hands the order over and answers with the outcome.
// Decoding: the browser's BarcodeDetector where it reads QR codes (Android's Chrome), else jsQR
// (vendored, loaded only then) on a small canvas, a few frames a second. The camera stops when the
// page is hidden and after each scan; typing the order number and code always works.
(function () {
  "use strict";
  var text = JSON.parse(document.getElementById("scan-i18n").textContent);
  var scanner = document.querySelector(".scanner");
  var view = document.getElementById("scan-view");
  var video = document.getElementById("scan-video");
  var state = document.getElementById("scan-state");
  var startButton = document.getElementById("scan-start");
  var outcome = document.getElementById("scan-outcome");
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var postUrl = document.querySelector("form[data-scan-form]").action;
  var FRAME_MS = 150;  // about 6 frames a second: quick enough, and kind to the battery
  var MAX_SIDE = 640;  // frames are scaled down to this before jsQR reads them
  // A link of ours (/o/h/<token>/) or the token alone: three base64url parts joined by colons.
  var OURS = /(^|\/o\/h\/)[\w-]+(:|%3A)[\w-]+(:|%3A)[\w-]+\/?$/i;
  var stream = null, timer = null, busy = false, detect = null, wanted = false;
  var canvas = document.createElement("canvas");
  var ctx = canvas.getContext("2d", { willReadFrequently: true });
  var ignored = { text: "", until: 0 };

  function say(message) { state.textContent = message; }

  function loadJsQR() {
    if (window.jsQR) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = scanner.getAttribute("data-jsqr");
      s.onload = resolve;
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }

  // A function frame -> Promise of the QR's text (or null), by the best means the browser has.
  function decoder() {
    if (detect) return Promise.resolve(detect);
    var native = "BarcodeDetector" in window && window.BarcodeDetector.getSupportedFormats
      ? window.BarcodeDetector.getSupportedFormats().catch(function () { return []; })
      : Promise.resolve([]);
    return native.then(function (formats) {
      if (formats.indexOf("qr_code") !== -1) {
        var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        detect = function (source) {
          return detector.detect(source).then(function (codes) { return codes.length ? codes[0].rawValue : null; });
        };
        return detect;
      }
      return loadJsQR().then(function () {
        detect = function (source) {
          var w = source.videoWidth || source.width, h = source.videoHeight || source.height;
          if (!w || !h) return Promise.resolve(null);
          var scale = Math.min(1, MAX_SIDE / Math.max(w, h));
          canvas.width = Math.round(w * scale);
          canvas.height = Math.round(h * scale);
          ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
          var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
          var code = window.jsQR(img.data, img.width, img.height, { inversionAttempts: "attemptBoth" });
          return Promise.resolve(code ? code.data : null);
        };
        return detect;
      });
    });
  }

  function stop() {
    clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    video.srcObject = null;
    view.hidden = true;
    startButton.hidden = false;
  }

  function start() {
    wanted = true;
    startButton.hidden = true;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say(text.unsupported);  // an old browser, or a page not served over HTTPS
      return;
    }
    say(text.starting);
    Promise.all([
      decoder(),
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }),
    ]).then(function (got) {
      if (!wanted || document.hidden) { got[1].getTracks().forEach(function (t) { t.stop(); }); return; }
      stream = got[1];
      video.srcObject = stream;
      view.hidden = false;
      return video.play().then(function () { say(text.scanning); tick(); });
    }).catch(function (err) {
      stop();
      var name = err && err.name;
      say(name === "NotAllowedError" || name === "SecurityError" ? text.denied
        : name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError" ? text.noCamera
          : text.unsupported);
    });
  }

  function tick() {
    timer = setTimeout(function () {
      if (!stream || busy) return;
      detect(video).catch(function () { return null; }).then(function (found) {
        if (!stream) return;
        if (found && found === ignored.text && Date.now() < ignored.until) found = null;
        if (!found) { tick(); return; }
        if (!OURS.test(found.trim())) {
          ignored = { text: found, until: Date.now() + 3000 };
          say(text.notOurs);
          tick();
          return;
        }
        wanted = false;
        stop();
        send({ text: found.trim() });
      });
    }, FRAME_MS);
  }

  function send(fields, form) {
    var body = new FormData(form || undefined);
    if (!form) { body.append("csrfmiddlewaretoken", csrf); }
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    busy = true;
    say(text.sending);
    return fetch(postUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrf },
    }).then(function (response) {
      return response.text().then(function (html) {
        outcome.innerHTML = html;
        outcome.focus();
        say(stream ? text.scanning : text.paused);
        if (response.ok && form) form.reset();
      });
    }).catch(function () {
      say(text.failed);
    }).then(function () { busy = false; });
  }

  document.querySelectorAll("form[data-scan-form]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      send({}, form);
    });
  });
  startButton.addEventListener("click", function () { outcome.innerHTML = ""; start(); });  // the last outcome is not this one
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { var was = wanted; stop(); wanted = was; }
    else if (wanted && !stream) start();
  });
  window.addEventListener("pagehide", stop);
  start();
})();
