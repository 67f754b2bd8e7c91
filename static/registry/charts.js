// Draws every server-shaped figure on the page with the vendored Plotly basic bundle (static/vendor/plotly-basic.min.js).
// Markup: <div class="chart" data-figure="ID"></div> plus {{ figure|json_script:"ID" }} holding {data, layout} and,
// optionally, "controls": ["log", "smooth"], which puts a log-scale switch and a smoothing slider above the chart.
// Charts are drawn when they come near the viewport (a page of twenty histories costs only what is on screen), in
// the page's light or dark colours, and again after htmx swaps new fragments in.
(function () {
  "use strict";
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  // Original y values of each chart's traces, kept so smoothing always starts from the logged numbers.
  const originals = new WeakMap();

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function baseLayout() {
    const ink = cssVar("--ink", "#1b2230");
    const panel = cssVar("--panel", "#ffffff");
    const grid = cssVar("--line", "#eef0f3");
    return {
      margin: { l: 60, r: 16, t: 36, b: 44 },
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: ink },
      paper_bgcolor: panel,
      plot_bgcolor: panel,
      hovermode: "x unified",
      hoverlabel: { bgcolor: panel, font: { color: ink } },
      legend: { orientation: "h", y: -0.2 },
      xaxis: { gridcolor: grid, zeroline: false, linecolor: grid },
      yaxis: { gridcolor: grid, zeroline: false, linecolor: grid },
    };
  }

  function merge(base, extra) {
    const out = Object.assign({}, base);
    for (const [key, value] of Object.entries(extra || {})) {
      out[key] = value && typeof value === "object" && !Array.isArray(value) && base[key] && typeof base[key] === "object"
        ? merge(base[key], value) : value;
    }
    return out;
  }

  // Exponential moving average with TensorBoard's debiasing, so the first points are not pulled towards zero.
  // Gaps (null) stay gaps and do not move the average.
  function smooth(values, weight) {
    if (!weight) return values.slice();
    let last = 0;
    let count = 0;
    return values.map(function (y) {
      if (y === null || y === undefined || !isFinite(y)) return y;
      last = last * weight + (1 - weight) * y;
      count += 1;
      return last / (1 - Math.pow(weight, count));
    });
  }

  function addControls(el, figure) {
    const wanted = figure.controls || [];
    if (!wanted.length || el.previousElementSibling && el.previousElementSibling.classList.contains("chart-controls")) {
      return;
    }
    const bar = document.createElement("div");
    bar.className = "chart-controls";
    const name = (figure.layout && figure.layout.title && figure.layout.title.text) || "chart";
    if (wanted.indexOf("log") >= 0) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.setAttribute("aria-label", "Log scale for " + name);
      box.addEventListener("change", function () {
        window.Plotly.relayout(el, { "yaxis.type": box.checked ? "log" : "linear", "yaxis.autorange": true });
      });
      label.append(box, " Log scale");
      bar.append(label);
    }
    if (wanted.indexOf("smooth") >= 0) {
      const label = document.createElement("label");
      const range = document.createElement("input");
      const shown = document.createElement("output");
      range.type = "range";
      range.min = "0";
      range.max = "0.95";
      range.step = "0.05";
      range.value = "0";
      range.setAttribute("aria-label", "Smoothing for " + name);
      shown.textContent = "0";
      range.addEventListener("input", function () {
        const weight = parseFloat(range.value);
        shown.textContent = weight.toFixed(2);
        const ys = originals.get(el).map(function (y) { return y ? smooth(y, weight) : y; });
        window.Plotly.restyle(el, { y: ys });
      });
      label.append(" Smoothing ", range, " ", shown);
      bar.append(label);
    }
    el.before(bar);
  }

  function drawOne(el) {
    if (el.dataset.drawn === "1" || !window.Plotly) return;
    const source = document.getElementById(el.dataset.figure);
    if (!source) return;
    const figure = JSON.parse(source.textContent);
    el.dataset.drawn = "1";
    originals.set(el, (figure.data || []).map(function (trace) { return trace.y ? trace.y.slice() : null; }));
    addControls(el, figure);
    window.Plotly.newPlot(el, figure.data || [], merge(baseLayout(), figure.layout), config);
  }

  const observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) {
        observer.unobserve(entry.target);
        drawOne(entry.target);
      }
    });
  }, { rootMargin: "300px 0px" }) : null;

  function draw(root) {
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.dataset.drawn === "1") return;
      if (observer) observer.observe(el); else drawOne(el);
    });
  }

  // Redraw in the other colours when the system switches between light and dark.
  const scheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  if (scheme && scheme.addEventListener) {
    scheme.addEventListener("change", function () {
      document.querySelectorAll('[data-figure][data-drawn="1"]').forEach(function (el) {
        const base = baseLayout();
        window.Plotly.relayout(el, {
          "font.color": base.font.color, paper_bgcolor: base.paper_bgcolor, plot_bgcolor: base.plot_bgcolor,
          "hoverlabel.bgcolor": base.hoverlabel.bgcolor, "hoverlabel.font.color": base.hoverlabel.font.color,
          "xaxis.gridcolor": base.xaxis.gridcolor, "yaxis.gridcolor": base.yaxis.gridcolor,
        });
      });
    });
  }

  window.RegistryCharts = { draw: draw, drawNow: drawOne, smooth: smooth };
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
