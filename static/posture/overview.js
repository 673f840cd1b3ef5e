// Overview: draws the trend chart (uPlot, vendored) from the JSON data island rendered by
// json_script (#trend-data). No inline script (CSP); without script the table under the
// chart says the same. Labels come from the server and are only ever used as text.
(() => {
  "use strict";
  const COLOURS = ["#2d55c8", "#8a3ffc", "#0e7c47"];

  function dayStamp(iso) {
    // Noon UTC of the day: the x axis is in days, not instants.
    return Date.parse(`${iso}T12:00:00Z`) / 1000;
  }

  function options(data, width) {
    return {
      width,
      height: width < 600 ? 220 : 280,
      scales: { x: { time: true }, y: { range: [0, 100] } },
      axes: [{}, { values: (u, ticks) => ticks.map((t) => `${t}%`), size: 50 }],
      legend: { live: width >= 600 },
      series: [
        { label: "Day", value: (u, v) => (v == null ? "–" : new Date(v * 1000).toISOString().slice(0, 10)) },
        ...data.series.map((s, i) => ({
          label: s.label,
          stroke: COLOURS[i % COLOURS.length],
          width: 2,
          spanGaps: false,
          points: { show: data.days.length <= 31 },
          value: (u, v) => (v == null ? "–" : `${v}%`),
        })),
      ],
    };
  }

  function draw() {
    const island = document.getElementById("trend-data");
    const box = document.getElementById("trend-chart");
    if (!island || !box || typeof uPlot === "undefined") return;
    const data = JSON.parse(island.textContent);
    const columns = [data.days.map(dayStamp), ...data.series.map((s) => s.score)];
    box.removeAttribute("aria-hidden");
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", "Fleet score per framework per day; the table below lists the same values.");
    const width = () => Math.max(240, box.clientWidth);
    let chart = new uPlot(options(data, width()), columns, box);
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        chart.destroy();
        chart = new uPlot(options(data, width()), columns, box);
      }, 60);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
