// verk_actors dashboard: the live figure and the live job events on the dashboard,
// "select all" on set pages, live poll on the Busy and node pages.
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

// Live poll (Busy and node pages): reload the page's content every few seconds, as
// Sidekiq's "Live poll" does; the toggle is remembered in this browser.
(function () {
  const KEY = "verk-live-poll";
  let timer = null;

  function button() { return document.getElementById("live-poll"); }

  function show() {
    const el = button();
    if (!el) return;
    const on = localStorage.getItem(KEY) === "on";
    el.setAttribute("aria-pressed", on ? "true" : "false");
    el.textContent = on ? "Stop live poll" : "Live poll";
    el.onclick = function () {
      localStorage.setItem(KEY, localStorage.getItem(KEY) === "on" ? "off" : "on");
      schedule();
    };
  }

  function refresh() {
    fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || localStorage.getItem(KEY) !== "on") return;
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        const main = document.querySelector("main");
        if (!fresh || !main) return;
        main.replaceChildren(...Array.from(fresh.childNodes).map(function (n) { return document.importNode(n, true); }));
        document.body.dataset.livePolls = String((Number(document.body.dataset.livePolls) || 0) + 1);
        show();
        const note = document.getElementById("live-poll-note");
        if (note) note.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function () { /* the app or Redis away: try again next time */ });
  }

  function schedule() {
    if (timer) { clearInterval(timer); timer = null; }
    show();
    const el = button();
    if (el && localStorage.getItem(KEY) === "on") {
      timer = setInterval(refresh, Number(el.dataset.every || 5000));
    }
  }

  document.addEventListener("DOMContentLoaded", schedule);
})();

// The live panel of the dashboard: job events from /api/events (EventSource), shown
// as text only (textContent), newest first, the last 50. Off until "Listen" is
// pressed: while anyone listens, nodes build and publish an event per job.
(function () {
  const KEEP = 50;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function setup() {
    const panel = document.getElementById("live-events");
    const rows = document.getElementById("events-rows");
    const state = document.getElementById("events-state");
    const toggle = document.getElementById("events-toggle");
    if (!panel || !rows || typeof EventSource === "undefined") return;
    let source = null;
    let seen = 0;

    function add(e) {
      const empty = rows.querySelector("tr.empty");
      if (empty) empty.remove();
      const row = document.createElement("tr");
      row.className = e.kind || "";
      const at = typeof e.at === "number" ? new Date(e.at * 1000).toLocaleTimeString() : "";
      cell(row, at);
      cell(row, e.kind === "node" ? "node " + (e.state || "") : (e.kind || "").replace("job_", ""), "kind");
      cell(row, e.node, "mono");
      cell(row, e.queue);
      cell(row, e.jid, "mono");
      cell(row, e["class"], "mono");
      cell(row, typeof e.duration === "number" ? e.duration.toFixed(3) + " s" : "", "n");
      cell(row, e.error_class ? e.error_class + ": " + (e.error_message || "") + " (" + (e.target || "") + ")" : "", "err");
      rows.insertBefore(row, rows.firstChild);
      while (rows.children.length > KEEP) rows.removeChild(rows.lastChild);
      seen += 1;
      panel.dataset.events = String(seen);
    }

    function open() {
      source = new EventSource(panel.dataset.url);
      source.onopen = function () { state.textContent = "listening"; panel.dataset.state = "open"; };
      source.onerror = function () { state.textContent = "reconnecting…"; panel.dataset.state = "error"; };
      source.onmessage = function (m) {
        try { add(JSON.parse(m.data)); } catch (err) { /* not an event: skip it */ }
      };
    }

    function close() {
      if (source) source.close();
      source = null;
      state.textContent = "paused";
      panel.dataset.state = "paused";
    }

    toggle.addEventListener("click", function () {
      const on = toggle.getAttribute("aria-pressed") === "true";
      toggle.setAttribute("aria-pressed", on ? "false" : "true");
      toggle.textContent = on ? "Listen" : "Stop";
      if (on) close(); else open();
    });
    window.addEventListener("pagehide", close);
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
