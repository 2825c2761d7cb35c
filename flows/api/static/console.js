// LeviBot console: draws every chart of the page from the JSON next to it (plotly.js, served by the API itself);
// on the Telegram Mini App entry page, posts the initData Telegram put in the URL fragment to the login.
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
  function telegram() {
    var form = document.getElementById("tg-login");
    if (!form) { return; }
    var data = new URLSearchParams(window.location.hash.slice(1)).get("tgWebAppData");
    if (!data) { document.getElementById("tg-status").textContent = "Open this page from the LeviBot bot in Telegram."; return; }
    document.getElementById("tg-init-data").value = data;
    form.submit();
  }
  function start() { telegram(); draw(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
