// verk_actors dashboard: the live figure on the dashboard, "select all" on set pages.
// Served as a file so the Content-Security-Policy needs no inline script.
"use strict";

(function () {
  function live() {
    const totals = document.getElementById("totals");
    const svg = document.getElementById("live-svg");
    if (!totals || !svg) return;
    const url = totals.dataset.stats;
    const lines = { processed: svg.querySelector(".processed"), failed: svg.querySelector(".failed") };
    const note = document.getElementById("live-note");
    const points = { processed: [], failed: [] };
    const keep = 60;
    let last = null;

    function draw() {
      const all = points.processed.concat(points.failed);
      const peak = Math.max(1, ...all);
      for (const name of ["processed", "failed"]) {
        const values = points[name];
        const step = 600 / (keep - 1);
        const start = keep - values.length;
        lines[name].setAttribute("points", values.map(function (v, i) {
          return ((start + i) * step).toFixed(1) + "," + (118 - (v / peak) * 114).toFixed(1);
        }).join(" "));
      }
      if (note) note.textContent = "peak " + peak + " per poll";
    }

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          const t = data.totals;
          for (const el of totals.querySelectorAll("[data-total]")) {
            const v = t[el.dataset.total];
            if (typeof v === "number") el.textContent = v.toLocaleString("en-US");
          }
          if (last) {
            for (const name of ["processed", "failed"]) {
              points[name].push(Math.max(0, t[name] - last[name]));
              if (points[name].length > keep) points[name].shift();
            }
            draw();
          }
          last = t;
          document.body.dataset.polled = String((Number(document.body.dataset.polled) || 0) + 1);
        })
        .catch(function () { /* Redis or the app away: try again next time */ });
    }

    poll();
    setInterval(poll, Number(totals.dataset.every || 5000));
  }

  function selectAll() {
    const box = document.getElementById("select-all");
    if (!box) return;
    box.addEventListener("change", function () {
      for (const el of document.querySelectorAll('#entries input[name="key"]')) el.checked = box.checked;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { live(); selectAll(); });
})();
