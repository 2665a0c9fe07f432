// One reconnecting websocket for the live pages (the map, the order page, the vendor's inbox and
// shift page): O2O.live(path, handlers).
//
// - Reconnects after a drop with exponential backoff and jitter (0.5-1 s, doubling, at most 30 s),
//   sooner when the browser comes back online; 4429 (too many sockets or messages) waits longer.
// - handlers.open(reconnected) runs on every (re)connection: where a page resyncs (the snapshot
//   calls), since whatever was sent while it was away is gone. A server refuses a socket by
//   accepting it and closing it at once with a code (so that the browser learns the code), so
//   "open" waits until the socket has stayed open SETTLE_MS, or until its first message: a refused
//   socket never runs the page's resync (no fetch the server would refuse too).
// - handlers.message(msg) gets each message, parsed; handlers.close(event) every close.
// - Stops for good on the codes that mean stop (4400 bad message, 4401 not logged in, 4403 not
//   allowed, 4404 not found or not yours): handlers.stop(reason, code) gets a sentence for the
//   user, from the page's #live-text (data attributes, translated in the template).
// Returns {send(object) -> bool, close(), open() -> bool}.
(function () {
  "use strict";
  var STOP = { 4400: "badMessage", 4401: "unauthenticated", 4403: "forbidden", 4404: "notFound" };
  var TOO_FAST = 4429;
  var BASE_MS = 500, MAX_MS = 30000, TOO_FAST_MS = 15000, TOO_FAST_MAX_MS = 120000;
  var STABLE_MS = 10000;  // open this long: the connection worked, the next drop starts over
  var SETTLE_MS = 200;

  function texts() {
    var el = document.getElementById("live-text");
    return el ? el.dataset : {};
  }

  function backoff(retry, code) {
    var base = code === TOO_FAST ? TOO_FAST_MS : BASE_MS;
    var cap = code === TOO_FAST ? TOO_FAST_MAX_MS : MAX_MS;
    var ms = Math.min(cap, base * Math.pow(2, retry));
    return ms * (0.5 + Math.random() / 2);  // jitter: a server restart is not met by a stampede
  }

  function live(path, handlers) {
    var socket = null, retry = 0, timer = null, stopped = false, openedAt = 0, connected = false;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";

    function connect() {
      timer = null;
      if (stopped) return;
      var ws = new WebSocket(scheme + location.host + path);
      var settled = false, settle = null;
      socket = ws;
      function opened() {
        clearTimeout(settle);
        if (settled || socket !== ws) return;
        settled = true;
        openedAt = Date.now();
        var again = connected;
        connected = true;
        if (handlers.open) handlers.open(again);
      }
      ws.onopen = function () { settle = setTimeout(opened, SETTLE_MS); };
      ws.onmessage = function (event) {
        opened();
        var msg;
        try { msg = JSON.parse(event.data); } catch (e) { return; }
        if (handlers.message) handlers.message(msg);
      };
      ws.onclose = function (event) {
        clearTimeout(settle);
        if (socket !== ws) return;  // replaced since (closed and opened again quickly)
        socket = null;
        if (openedAt && Date.now() - openedAt > STABLE_MS) retry = 0;
        openedAt = 0;
        if (handlers.close) handlers.close(event);
        if (stopped) return;  // closed by the page
        var reason = STOP[event.code];
        if (reason) {
          stopped = true;
          if (handlers.stop) handlers.stop(texts()[reason] || "", event.code);
          return;
        }
        var wait = backoff(retry, event.code);
        retry = Math.min(retry + 1, 6);
        timer = setTimeout(connect, wait);
      };
    }

    window.addEventListener("online", function () {
      // Back online: try now rather than at the end of a long wait.
      if (timer !== null && !stopped) { clearTimeout(timer); retry = 0; connect(); }
    });
    connect();

    return {
      send: function (message) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(JSON.stringify(message));
        return true;
      },
      open: function () { return !!socket && socket.readyState === WebSocket.OPEN && openedAt > 0; },
      close: function () {
        stopped = true;
        clearTimeout(timer);
        timer = null;
        if (socket) socket.close(1000);
      }
    };
  }

  window.O2O = window.O2O || {};
  window.O2O.live = live;
})();
