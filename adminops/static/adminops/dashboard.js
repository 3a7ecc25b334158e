// Live operations charts: polls the snapshot endpoint and draws inline SVG line charts.
// Counters in a snapshot are cumulative, so rates come from the difference of two snapshots.
(function () {
  "use strict";

  var root = document.getElementById("ops-dashboard");
  if (!root) return;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var WIDTH = 400, HEIGHT = 150, PAD_LEFT = 40, PAD_RIGHT = 8, PAD_TOP = 8, PAD_BOTTOM = 16;
  var KEEP = 90;
  var COLORS = ["#417690", "#e07b39", "#c0392b", "#27ae60", "#8e44ad", "#f1c40f", "#7f8c8d"];
  var url = root.dataset.snapshotUrl;
  var pollMs = Math.max(1, Number(root.dataset.pollSeconds) || 2) * 1000;
  var series = {};  // chart name -> {series name -> [[ts, value], ...]}
  var previous = null;

  function push(chart, name, ts, value) {
    if (value === null || value === undefined || !isFinite(value)) return;
    var byName = series[chart] || (series[chart] = {});
    var points = byName[name] || (byName[name] = []);
    points.push([ts, value]);
    if (points.length > KEEP) points.shift();
  }

  function sumClasses(classes, prefix) {
    var total = 0;
    Object.keys(classes || {}).forEach(function (key) {
      if (prefix === null || key.charAt(0) === prefix) total += Number(classes[key]) || 0;
    });
    return total;
  }

  function record(snap) {
    var ts = snap.ts;
    // Behind a load balancer polls can reach another instance, whose counters are its own.
    if (previous && previous.instance !== snap.instance) previous = null;
    if (previous && ts > previous.ts) {
      var seconds = ts - previous.ts;
      var requests = Math.max(0, snap.requests_total - previous.requests_total);
      push("request_rate", "requests", ts, requests / seconds);
      var answered = sumClasses(snap.status_classes, null) - sumClasses(previous.status_classes, null);
      ["4", "5"].forEach(function (cls) {
        var errors = sumClasses(snap.status_classes, cls) - sumClasses(previous.status_classes, cls);
        push("error_rate", cls + "xx", ts, answered > 0 ? (100 * errors) / answered : 0);
      });
    }
    ["p50", "p95", "p99"].forEach(function (q) { push("latency", q, ts, (snap.latency_ms || {})[q]); });
    Object.keys(snap.cache_hit_rate || {}).forEach(function (type) {
      var rate = snap.cache_hit_rate[type];
      if (rate !== null) push("cache_hit_rate", type, ts, 100 * rate);
    });
    push("open_websockets", "open", ts, snap.open_websockets);
    push("online_users", "online", ts, snap.online_users);
    previous = snap;
  }

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function format(value) {
    return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  }

  function draw(figure) {
    var chart = figure.dataset.chart;
    var byName = series[chart] || {};
    var names = Object.keys(byName).sort();
    var all = [];
    names.forEach(function (name) { all = all.concat(byName[name]); });
    var svg = el("svg", { viewBox: "0 0 " + WIDTH + " " + HEIGHT, role: "img",
                          "aria-label": figure.querySelector("figcaption").textContent });
    var x0 = PAD_LEFT, x1 = WIDTH - PAD_RIGHT, y0 = HEIGHT - PAD_BOTTOM, y1 = PAD_TOP;
    svg.appendChild(el("line", { class: "axis", x1: x0, y1: y0, x2: x1, y2: y0 }));
    svg.appendChild(el("line", { class: "axis", x1: x0, y1: y0, x2: x0, y2: y1 }));
    if (all.length) {
      var tMin = Math.min.apply(null, all.map(function (p) { return p[0]; }));
      var tMax = Math.max.apply(null, all.map(function (p) { return p[0]; }));
      var vMax = Math.max.apply(null, all.map(function (p) { return p[1]; }));
      // Percentages keep a fixed 0-100 scale; other figures get headroom above their peak.
      vMax = figure.dataset.unit === "%" ? Math.max(vMax, 100) : vMax > 0 ? vMax * 1.1 : 1;
      var tSpan = Math.max(tMax - tMin, 1e-6);
      var unit = figure.dataset.unit ? " " + figure.dataset.unit : "";
      svg.appendChild(el("text", { class: "label", x: 2, y: y1 + 8 }, format(vMax) + unit));
      svg.appendChild(el("text", { class: "label", x: 2, y: y0 }, "0"));
      svg.appendChild(el("text", { class: "label", x: x1 - 60, y: HEIGHT - 2 },
                         Math.round(tMax - tMin) + " s shown"));
      names.forEach(function (name, i) {
        var points = byName[name];
        var d = points.map(function (p, j) {
          var x = x0 + ((p[0] - tMin) / tSpan) * (x1 - x0);
          var y = y0 - (p[1] / vMax) * (y0 - y1);
          return (j ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
        }).join(" ");
        var path = el("path", { class: "series", d: d, stroke: COLORS[i % COLORS.length],
                                "data-series": name, "data-points": points.length });
        svg.appendChild(path);
        var last = points[points.length - 1];
        path.appendChild(el("title", {}, name + ": " + format(last[1]) + unit));
      });
    }
    var legend = document.createElement("div");
    legend.className = "ops-legend";
    names.forEach(function (name, i) {
      var points = byName[name];
      var item = document.createElement("span");
      item.style.setProperty("--swatch", COLORS[i % COLORS.length]);
      item.textContent = name + " " + format(points[points.length - 1][1]);
      legend.appendChild(item);
    });
    Array.prototype.slice.call(figure.querySelectorAll("svg, .ops-legend")).forEach(function (old) {
      figure.removeChild(old);
    });
    figure.appendChild(svg);
    figure.appendChild(legend);
  }

  function drawAll() {
    Array.prototype.forEach.call(root.querySelectorAll(".ops-chart"), draw);
  }

  function drawJobs(snap) {
    var body = document.querySelector("#ops-jobs tbody");
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    var jobs = snap.jobs || [];
    if (!jobs.length) {
      var empty = body.insertRow();
      empty.className = "ops-jobs-empty";
      var cell = empty.insertCell();
      cell.colSpan = 5;
      cell.textContent = "No job queued or running.";
    }
    jobs.forEach(function (job) {
      var row = body.insertRow();
      row.dataset.job = job.id;
      var progress = job.total ? job.done + " / " + job.total +
        " (" + Math.floor((100 * job.done) / job.total) + " %)" : String(job.done);
      [String(job.id), job.kind, job.status, progress, job.created_at].forEach(function (text) {
        row.insertCell().textContent = text;
      });
    });
    var queues = snap.queues || {};
    document.getElementById("ops-queues").textContent = Object.keys(queues).sort().map(function (name) {
      return name + " " + (queues[name] === null ? "?" : queues[name]);
    }).join(", ") || "no broker";
  }

  function poll() {
    var problem = document.getElementById("ops-error");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("snapshot answered " + response.status);
        return response.json();
      })
      .then(function (snap) {
        record(snap);
        drawJobs(snap);
        document.getElementById("ops-instance").textContent = snap.instance || "this instance";
        problem.hidden = true;
        drawAll();
      })
      .catch(function (error) {
        problem.textContent = String(error.message || error);
        problem.hidden = false;
      })
      .then(function () { setTimeout(poll, pollMs); });
  }

  drawAll();
  poll();
})();
