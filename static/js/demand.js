// The staff demand page: the areas of the table, drawn as their H3 cells and coloured by the
// chosen figure in four steps (quartiles of the areas that have it). The table has the figures.
(function () {
  "use strict";
  var areas = JSON.parse(document.getElementById("demand-areas").textContent);
  var cfg = JSON.parse(document.getElementById("demand-config").textContent);
  var colours = ["#fde0c5", "#f9a66c", "#e4572e", "#8c1c13"];
  var map = L.map("demand-map").setView([37.5665, 126.978], 11);
  L.tileLayer(cfg.tiles, { attribution: cfg.attribution, maxZoom: 18 }).addTo(map);

  function value(f) { var v = f.properties[cfg.metric]; return v === null || v === undefined ? null : v; }
  var values = areas.features.map(value).filter(function (v) { return v !== null && v > 0; });
  values.sort(function (a, b) { return a - b; });
  function step(v) {
    if (v === null || v <= 0 || !values.length) return -1;
    // The quartile of its rank: the largest is always the darkest, even alone.
    var below = values.filter(function (x) { return x < v; }).length;
    return Math.min(3, Math.ceil(((below + 1) / values.length) * 4) - 1);
  }

  var layer = L.geoJSON(areas, {
    style: function (f) {
      var s = step(value(f));
      return s < 0
        ? { color: "#777", weight: 1, fillOpacity: 0.05 }
        : { color: colours[s], weight: 1, fillColor: colours[s], fillOpacity: 0.6 };
    },
    onEachFeature: function (f, shape) {
      var tip = document.createElement("span");  // an element: never HTML from data
      tip.textContent = f.properties.cell + ": " + (value(f) === null ? "–" : value(f));
      shape.bindTooltip(tip);
      shape.on("add", function () {
        var el = shape.getElement && shape.getElement();
        if (el) el.setAttribute("data-cell", f.properties.cell);
      });
    }
  }).addTo(map);
  if (areas.features.length) map.fitBounds(layer.getBounds(), { maxZoom: 14 });
  document.body.dataset.demandReady = "1";
})();
