// Draws every server-shaped figure on the page with the vendored plotly.min.js.
// Markup: <div class="chart" data-figure="ID"></div> plus {{ figure|json_script:"ID" }} holding {data, layout}.
// Works again after htmx swaps new fragments in.
(function () {
  "use strict";
  const baseLayout = {
    margin: { l: 56, r: 16, t: 36, b: 44 },
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#1b2230" },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    hovermode: "x unified",
    legend: { orientation: "h", y: -0.2 },
    xaxis: { gridcolor: "#eef0f3", zeroline: false },
    yaxis: { gridcolor: "#eef0f3", zeroline: false },
  };
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function merge(base, extra) {
    const out = Object.assign({}, base);
    for (const [key, value] of Object.entries(extra || {})) {
      out[key] = value && typeof value === "object" && !Array.isArray(value) && base[key] && typeof base[key] === "object"
        ? merge(base[key], value) : value;
    }
    return out;
  }

  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.dataset.drawn === "1") return;
      const source = document.getElementById(el.dataset.figure);
      if (!source) return;
      const figure = JSON.parse(source.textContent);
      el.dataset.drawn = "1";
      // A fresh copy of the base layout each time: Plotly writes ranges into the layout objects it is given, and
      // shared nested objects (xaxis, yaxis) would carry one chart's ranges into the next.
      const base = JSON.parse(JSON.stringify(baseLayout));
      window.Plotly.newPlot(el, figure.data || [], merge(base, figure.layout), config);
    });
  }

  window.RegistryCharts = { draw: draw };
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
