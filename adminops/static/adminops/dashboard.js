// Live operations charts: polls the snapshot endpoint and draws inline SVG line charts.
// The server keeps an hour of every instance's samples; each point is a rate or percentile
// over the 60 s before it, so a page opened now shows the past hour at once.
(function () {
  "use strict";

  var root = document.getElementById("ops-dashboard");
  if (!root) return;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var WIDTH = 440, HEIGHT = 180, PAD_LEFT = 44, PAD_RIGHT = 8, PAD_TOP = 18, PAD_BOTTOM = 30;
  var TOTAL = "all instances";
  var COLORS = ["#1b4f72", "#e07b39", "#27ae60", "#8e44ad", "#c0392b", "#f1c40f", "#7f8c8d"];
  var url = root.dataset.snapshotUrl;
  var pollMs = Math.max(1, Number(root.dataset.pollSeconds) || 5) * 1000;

  // Each chart: the point fields it draws, which instances, and its alert threshold if any.
  var CHARTS = {
    request_rate: { fields: { request_rate: "" }, perInstance: true },
    latency: {
      fields: { p50_ms: "p50", p95_ms: "p95", p99_ms: "p99" },
      perInstance: false, threshold: "p99_ms", above: true
    },
    instance_p99: { fields: { p99_ms: "" }, perInstance: true, threshold: "p99_ms", above: true },
    error_rate: {
      fields: { error_4xx_percent: "4xx", error_5xx_percent: "5xx" },
      perInstance: false, threshold: "error_4xx_percent", above: true,
      extraThreshold: "error_5xx_percent"
    },
    cache_hit_rate: {
      fields: { cache_hit_percent: "" }, perInstance: true,
      threshold: "cache_hit_percent", above: false
    },
    open_websockets: { fields: { websockets_open: "" }, perInstance: true }
  };

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function format(value) {
    if (value === null || value === undefined) return "–";
    return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  }

  function clock(ts) {
    var d = new Date(ts * 1000);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  // name -> [[ts, value], ...] for one chart, from the snapshot's per-instance and summed points.
  function seriesOf(spec, snap) {
    var out = {};
    var sources = {};
    var instances = Object.keys(snap.instances || {}).sort();
    if (spec.perInstance) {
      instances.forEach(function (name) { sources[name] = snap.instances[name]; });
      if (instances.length !== 1) sources[TOTAL] = snap.total || [];
    } else {
      sources[TOTAL] = snap.total || [];
    }
    Object.keys(sources).forEach(function (source) {
      Object.keys(spec.fields).forEach(function (field) {
        var label = spec.fields[field];
        var name = label ? label + (spec.perInstance ? " " + source : "") : source;
        var points = [];
        sources[source].forEach(function (p) {
          if (p[field] !== null && p[field] !== undefined) points.push([p.ts, p[field]]);
        });
        if (points.length) out[name] = points;
      });
    });
    return out;
  }

  function draw(figure, snap) {
    var spec = CHARTS[figure.dataset.chart];
    var unit = figure.dataset.unit;
    var byName = seriesOf(spec, snap);
    var names = Object.keys(byName).sort();
    var all = [];
    names.forEach(function (name) { all = all.concat(byName[name]); });
    var thresholds = snap.thresholds || {};
    var threshold = spec.threshold ? thresholds[spec.threshold] : null;
    var svg = el("svg", { viewBox: "0 0 " + WIDTH + " " + HEIGHT, role: "img",
                          "aria-label": figure.querySelector("figcaption").textContent });
    var x0 = PAD_LEFT, x1 = WIDTH - PAD_RIGHT, y0 = HEIGHT - PAD_BOTTOM, y1 = PAD_TOP;
    svg.appendChild(el("line", { class: "axis", x1: x0, y1: y0, x2: x1, y2: y0 }));
    svg.appendChild(el("line", { class: "axis", x1: x0, y1: y0, x2: x0, y2: y1 }));
    var tMax = snap.ts, tMin = snap.ts - 3600;
    if (all.length) tMin = Math.min(tMin, Math.min.apply(null, all.map(function (p) { return p[0]; })));
    var vMax = all.length ? Math.max.apply(null, all.map(function (p) { return p[1]; })) : 0;
    if (threshold !== null && threshold !== undefined) vMax = Math.max(vMax, threshold);
    // Percentages keep a fixed 0-100 scale; other figures get headroom above their peak.
    vMax = unit === "%" ? 100 : vMax > 0 ? vMax * 1.1 : 1;
    var tSpan = Math.max(tMax - tMin, 1e-6);
    function xOf(t) { return x0 + ((t - tMin) / tSpan) * (x1 - x0); }
    function yOf(v) { return y0 - (Math.min(v, vMax) / vMax) * (y0 - y1); }

    if (threshold !== null && threshold !== undefined) {
      var top = spec.above ? y1 : yOf(threshold), bottom = spec.above ? yOf(threshold) : y0;
      var latest = snap.alerts || [];
      var crossed = latest.some(function (a) {
        return a.figure === spec.threshold || (spec.extraThreshold && a.figure === spec.extraThreshold);
      });
      var band = el("rect", { class: "alert-band" + (crossed ? " crossed" : ""), x: x0, y: top,
                              width: x1 - x0, height: Math.max(bottom - top, 0),
                              "data-threshold": threshold, "data-crossed": crossed ? "true" : "false" });
      band.appendChild(el("title", {}, (spec.above ? "alert above " : "alert below ") +
                                       format(threshold) + " " + unit));
      svg.appendChild(band);
    }
    // Axis labels: the unit above the value axis, clock time on the time axis.
    svg.appendChild(el("text", { class: "label unit", x: 2, y: 10 }, unit));
    [0, 0.5, 1].forEach(function (share) {
      var v = vMax * share;
      svg.appendChild(el("text", { class: "label", x: x0 - 4, y: yOf(v) + 3, "text-anchor": "end" },
                         format(v)));
    });
    [0, 0.5, 1].forEach(function (share) {
      var t = tMin + tSpan * share;
      svg.appendChild(el("text", { class: "label", x: xOf(t), y: y0 + 12,
                                   "text-anchor": share === 0 ? "start" : share === 1 ? "end" : "middle" },
                         clock(t)));
    });
    svg.appendChild(el("text", { class: "label", x: x1, y: HEIGHT - 2, "text-anchor": "end" },
                       "time (last hour, " + snap.window_seconds + " s windows)"));
    names.forEach(function (name, i) {
      var points = byName[name];
      var d = points.map(function (p, j) {
        return (j ? "L" : "M") + xOf(p[0]).toFixed(1) + "," + yOf(p[1]).toFixed(1);
      }).join(" ");
      var path = el("path", { class: "series", d: d, stroke: COLORS[i % COLORS.length],
                              "data-series": name, "data-points": points.length,
                              "data-last": points[points.length - 1][1] });
      path.appendChild(el("title", {}, name + ": " + format(points[points.length - 1][1]) + " " + unit));
      svg.appendChild(path);
      // The latest point as a dot, so that a series of one point shows too.
      var last = points[points.length - 1];
      svg.appendChild(el("circle", { class: "last", cx: xOf(last[0]).toFixed(1), cy: yOf(last[1]).toFixed(1),
                                     r: 2.5, fill: COLORS[i % COLORS.length] }));
    });
    var legend = document.createElement("div");
    legend.className = "ops-legend";
    names.forEach(function (name, i) {
      var points = byName[name];
      var item = document.createElement("span");
      item.style.setProperty("--swatch", COLORS[i % COLORS.length]);
      item.textContent = name + " " + format(points[points.length - 1][1]) + " " + unit;
      legend.appendChild(item);
    });
    if (!names.length) legend.textContent = "no samples yet";
    Array.prototype.slice.call(figure.querySelectorAll("svg, .ops-legend")).forEach(function (old) {
      figure.removeChild(old);
    });
    figure.appendChild(svg);
    figure.appendChild(legend);
  }

  function showAlerts(snap) {
    var box = document.getElementById("ops-alerts");
    box.textContent = "";
    (snap.alerts || []).forEach(function (alert) {
      var item = document.createElement("li");
      item.dataset.figure = alert.figure;
      item.textContent = alert.where + ": " + alert.figure.replace(/_/g, " ") + " " +
        format(alert.value) + (alert.figure === "cache_hit_percent" ? " below " : " above ") +
        format(alert.threshold);
      box.appendChild(item);
    });
    box.hidden = !box.children.length;
  }

  function showInstances(snap) {
    var names = Object.keys(snap.instances || {}).sort();
    document.getElementById("ops-instances").textContent =
      names.length + " live (" + (names.join(", ") || "none yet") + "), this page served by " + snap.instance;
    document.getElementById("ops-online").textContent = snap.online_users + " users";
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
        showInstances(snap);
        showAlerts(snap);
        Array.prototype.forEach.call(root.querySelectorAll(".ops-chart"), function (figure) {
          draw(figure, snap);
        });
        drawJobs(snap);
        problem.hidden = true;
      })
      .catch(function (error) {
        problem.textContent = String(error.message || error);
        problem.hidden = false;
      })
      .then(function () { setTimeout(poll, pollMs); });
  }

  poll();
})();
