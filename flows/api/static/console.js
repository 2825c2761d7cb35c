// LeviBot console: draws every chart of the page from the JSON next to it (plotly.js, served by the API itself).
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var src = document.getElementById("data-" + el.dataset.chart);
      if (!src || typeof Plotly === "undefined") { return; }
      var spec = JSON.parse(src.textContent);
      var layout = Object.assign({margin: {l: 60, r: 20, t: 10, b: 40}, showlegend: true,
                                  legend: {orientation: "h"}}, spec.layout || {});
      Plotly.newPlot(el, spec.data, layout, {displayModeBar: false, responsive: true}).then(function () {
        el.dataset.rendered = "1";
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
