// The operator's dashboard: the cluster list (/) and one cluster's live charts (/clusters/ns/name).
// Data comes from /ws/metrics: a snapshot on connect, then one update per second. Charts are uPlot
// (built from npm by hack/dashboard-assets.sh, served by the operator). Read-only.
//
// window.__dash exposes what the browser tests read: the uPlot instances, and the push-to-paint
// latencies (ms from the server's stamp on a message to the animation frame that paints it).
"use strict";

const HISTORY_S = 300;
const dash = (window.__dash = { charts: {}, latencies: [], messages: 0, updates: 0, lastT: null });
const page = document.body.dataset.page;
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "href") e.href = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}
const fmt = (x, unit = "", digits = 0) => (x == null ? "–" : `${Number(x).toFixed(digits)}${unit}`);
const ago = (t) => (t == null ? "–" : `${Math.max(0, Math.round(Date.now() / 1000 - t))} s ago`);
const clock = (t) => new Date(t * 1000).toLocaleTimeString();
const readyClass = (r) => (r === "True" ? "ok" : r === "False" ? "bad" : "muted");

function connect(query, onMessage) {
  const status = $("#conn");
  let backoff = 500;
  const open = () => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/metrics${query}`);
    ws.onopen = () => { status.textContent = "live"; status.className = "conn live"; backoff = 500; };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      dash.messages += 1;
      onMessage(msg);
      const stamp = msg.stamp;
      // The frame that paints what onMessage drew (uPlot draws in a microtask before it).
      requestAnimationFrame(() => {
        const painted = performance.timeOrigin + performance.now();
        dash.latencies.push(painted - stamp);
        if (dash.latencies.length > 2000) dash.latencies.shift();
      });
    };
    ws.onclose = () => {
      status.textContent = "disconnected: retrying"; status.className = "conn down";
      setTimeout(open, backoff); backoff = Math.min(backoff * 2, 10000);
    };
  };
  open();
}

// -- the cluster list ---------------------------------------------------------------------------
// Rows are keyed by namespace/name and updated in place, only where a cell's text changed: a link
// the user is about to click, or text they selected, is not replaced under them every second.
function indexCells(r) {
  const alerts = r.alerts.length ? r.alerts.map((a) => `${a.name} (${a.severity})`).join(", ") : "none";
  return [
    [r.namespace, ""], [r.name, ""], [r.ready, readyClass(r.ready)],
    [`${fmt(r.replicas.ready)}/${fmt(r.replicas.desired)}`, "replicas"], [fmt(r.replicas.recommendation), ""],
    [fmt(r.p95Ms, " ms"), ""], [fmt(r.sloMs, " ms"), ""], [fmt(r.gpuMemoryPercent, " %"), ""],
    [alerts, r.alerts.length ? "bad" : "muted"], [ago(r.updated), "muted"],
  ];
}

function indexRow(r) {
  const link = el("a", { href: `/clusters/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}` });
  const tr = el("tr", { "data-cluster": `${r.namespace}/${r.name}` });
  indexCells(r).forEach((_, i) => tr.append(el("td", {}, i === 1 ? link : "")));
  return tr;
}

function renderIndex(rows) {
  const body = $("#clusters tbody");
  if (!rows.length) {
    body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 10 }, "no GenerationCluster yet")));
    return;
  }
  const existing = new Map([...body.querySelectorAll("tr[data-cluster]")].map((tr) => [tr.dataset.cluster, tr]));
  const ordered = rows.map((r) => {
    const key = `${r.namespace}/${r.name}`;
    const tr = existing.get(key) || indexRow(r);
    existing.delete(key);
    indexCells(r).forEach(([text, cls], i) => {
      const td = tr.children[i];
      const target = i === 1 ? td.firstChild : td;
      if (target.textContent !== text) target.textContent = text;
      if (td.className !== cls) td.className = cls;
    });
    return tr;
  });
  body.querySelectorAll("tr.empty").forEach((tr) => tr.remove());
  existing.forEach((tr) => tr.remove());
  ordered.forEach((tr, i) => { if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null); });
}

// -- one cluster ----------------------------------------------------------------------------------
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#7f7f7f", "#bcbd22"];
const GIB = 1024 * 1024 * 1024;
const SCALARS = ["rps", "p50", "p95", "p99", "slo", "queue", "errors", "shed", "gpuMemory", "ready",
  "desired", "current", "recommendation", "cache_l1", "cache_redis"];

const store = { t: [], cols: {}, pods: {} };  // columns aligned with t; pods[name][field] likewise

function pushPoint(p) {
  const last = store.t.length ? store.t[store.t.length - 1] : -Infinity;
  if (p.t < last) return false;
  const replace = p.t === last;
  const put = (arr, v) => { if (replace) arr[arr.length - 1] = v; else arr.push(v); };
  const flat = { ...p, cache_l1: p.cache.l1, cache_redis: p.cache.redis };
  if (!replace) store.t.push(p.t);
  for (const k of SCALARS) { store.cols[k] = store.cols[k] || store.t.slice(0, -1).map(() => null); put(store.cols[k], flat[k] ?? null); }
  const n = store.t.length;
  const before = replace ? n : n - 1;  // values a new pod lacks (put() then adds or replaces the last)
  for (const name of Object.keys(p.pods)) {
    if (!store.pods[name]) store.pods[name] = { batch: Array(before).fill(null), used: Array(before).fill(null),
      reserved: Array(before).fill(null), total: Array(before).fill(null) };
  }
  for (const [name, cols] of Object.entries(store.pods)) {
    const q = p.pods[name] || {};
    for (const f of ["batch", "used", "reserved", "total"]) put(cols[f], q[f] ?? null);
  }
  const horizon = p.t - HISTORY_S;
  let cut = 0;
  while (cut < store.t.length && store.t[cut] <= horizon) cut += 1;
  if (cut) {
    store.t.splice(0, cut);
    for (const k of SCALARS) store.cols[k].splice(0, cut);
    for (const [name, cols] of Object.entries(store.pods)) {
      for (const f of Object.keys(cols)) cols[f].splice(0, cut);
      if (cols.batch.every((v) => v == null) && cols.used.every((v) => v == null)) delete store.pods[name];
    }
  }
  return true;
}

function loadHistory(h) {
  store.t = h.series.t.slice();
  store.cols = {};
  for (const k of SCALARS) store.cols[k] = (h.series[camel(k)] || h.series[k] || store.t.map(() => null)).slice();
  store.pods = {};
  for (const [name, cols] of Object.entries(h.pods)) store.pods[name] = Object.fromEntries(
    Object.entries(cols).map(([f, v]) => [f, v.slice()]));
}
const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

function chartDefs() {
  const pods = Object.keys(store.pods).sort();
  const podSeries = (field, label, dash_, scale) => pods.map((p, i) => ({
    label: `${p.replace(/^.*-workload-/, "")} ${label}`, stroke: COLORS[i % COLORS.length], dash: dash_,
    data: () => store.pods[p][field].map((v) => (v == null ? null : v / scale)) }));
  return [
    { id: "rps", title: "Request rate (req/s)", series: [{ label: "req/s", stroke: COLORS[0], data: () => store.cols.rps }] },
    { id: "latency", title: "Latency (ms) vs SLO", series: [
      { label: "p50", stroke: COLORS[2], data: () => store.cols.p50 },
      { label: "p95", stroke: COLORS[0], width: 2, data: () => store.cols.p95 },
      { label: "p99", stroke: COLORS[3], data: () => store.cols.p99 },
      { label: "SLO", stroke: COLORS[1], dash: [6, 4], data: () => store.cols.slo }] },
    { id: "queue", title: "Queue depth (all pods)", series: [{ label: "queued", stroke: COLORS[4], data: () => store.cols.queue }] },
    { id: "replicas", title: "Replicas", series: [
      { label: "ready", stroke: COLORS[2], width: 2, data: () => store.cols.ready },
      { label: "desired", stroke: COLORS[0], dash: [6, 4], data: () => store.cols.desired },
      { label: "recommended", stroke: COLORS[3], dash: [2, 3], data: () => store.cols.recommendation }] },
    { id: "batch", title: "Batch size per pod", series: podSeries("batch", "batch", undefined, 1) },
    { id: "memory", title: "GPU memory per pod (GiB): used, reserved - -, total ···", series: [
      ...podSeries("used", "used", undefined, GIB), ...podSeries("reserved", "reserved", [6, 4], GIB),
      ...podSeries("total", "total", [2, 3], GIB)] },
    { id: "cache", title: "Cache hit ratio by tier (%)", series: [
      { label: "l1", stroke: COLORS[0], data: () => store.cols.cache_l1 },
      { label: "redis", stroke: COLORS[3], data: () => store.cols.cache_redis }] },
    { id: "errors", title: "Errors and shed (per s)", series: [
      { label: "5xx/s", stroke: COLORS[1], data: () => store.cols.errors },
      { label: "shed 429/s", stroke: COLORS[3], data: () => store.cols.shed }] },
  ];
}

let shapeKey = "";
function drawCharts() {
  if (typeof uPlot === "undefined") { $("#nocharts").hidden = false; return; }
  const defs = chartDefs();
  const key = Object.keys(store.pods).sort().join(",");
  const box = $("#charts");
  const width = Math.max(420, Math.floor((box.clientWidth || 960) / Math.max(1, Math.floor((box.clientWidth || 960) / 480))) - 24);
  if (key !== shapeKey) {  // the pods changed: per-pod series are rebuilt
    for (const u of Object.values(dash.charts)) u.destroy();
    dash.charts = {};
    box.replaceChildren();
    for (const d of defs) {
      const holder = el("div", { class: "chart", "data-chart": d.id }, el("h3", {}, d.title));
      box.append(holder);
      const opts = { width, height: 190, scales: { x: { time: true } }, legend: { live: false },
        series: [{}, ...d.series.map((s) => ({ label: s.label, stroke: s.stroke, width: s.width || 1.5,
          dash: s.dash, spanGaps: true, points: { show: false } }))],
        axes: [{}, { size: 50 }] };
      dash.charts[d.id] = new uPlot(opts, [store.t, ...d.series.map((s) => s.data())], holder);
    }
    shapeKey = key;
    return;
  }
  for (const d of defs) dash.charts[d.id].setData([store.t, ...d.series.map((s) => s.data())]);
}

function renderState(c) {
  const s = c.summary;
  $("#title").textContent = `${s.namespace}/${s.name}`;
  const card = (k, v, cls = "") => el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: `v ${cls}` }, v));
  $("#summary").replaceChildren(
    card("Ready", s.ready + (s.readyReason ? ` (${s.readyReason})` : ""), readyClass(s.ready)),
    card("Replicas ready/desired", `${fmt(s.replicas.ready)}/${fmt(s.replicas.desired)}`),
    card("Recommendation", fmt(s.replicas.recommendation)),
    card("P95", fmt(s.p95Ms, " ms"), s.p95Ms != null && s.sloMs != null && s.p95Ms > s.sloMs ? "bad" : ""),
    card("SLO", fmt(s.sloMs, " ms")), card("GPU memory", fmt(s.gpuMemoryPercent, " %")),
    card("Alerts", String(s.alerts.length), s.alerts.length ? "bad" : "ok"), card("Updated", ago(s.updated)));
  const d = c.decision;
  if (d) {
    $("#reason").textContent = `${d.current} → ${d.desired} (${d.direction}, ${d.reasonClass}): ${d.reason}`;
    const body = $("#proposals tbody");
    body.replaceChildren(...d.proposals.map((p) => el("tr", { class: p.winner ? "winner" : "" },
      el("td", {}, p.metric + (p.winner ? " ✔ won" : "")), el("td", {}, fmt(p.value, "", 1)), el("td", {}, fmt(p.target, "", 1)),
      el("td", {}, fmt(p.ratio, "", 2)), el("td", {}, p.replicas == null ? "abstains" : p.replicas), el("td", { class: "muted" }, p.note))));
    const moves = d.batch.changes.map((x) => `${x.pod} ${x.from}→${x.to} (${x.reason})`).join("; ");
    $("#batch").textContent = `Batch size for new pods: ${fmt(d.batch.default)}${moves ? `; this interval: ${moves}` : ""}`;
  }
  const alerts = $("#alerts");
  alerts.replaceChildren(...(c.alerts.length ? c.alerts.map((a) => el("li", { class: a.severity === "critical" ? "bad" : "warn" },
    `${a.name} (${a.severity}): value ${fmt(a.value)}, threshold ${fmt(a.threshold)}, since ${a.since}`))
    : [el("li", { class: "muted" }, "none firing")]));
  if (c.cost) {
    $("#costbox").hidden = false;
    $("#cost tbody").replaceChildren(...Object.entries(c.cost).map(([k, v]) => el("tr", {}, el("td", {}, k),
      el("td", {}, typeof v === "object" ? JSON.stringify(v) : v))));
  }
  const ev = $("#events tbody");
  if (c.events.length) {
    ev.replaceChildren(...c.events.slice().reverse().map((e) => el("tr", { class: e.type === "Warning" ? "bad" : "" },
      el("td", {}, clock(e.t)), el("td", {}, e.type), el("td", { class: "reason-cell" }, e.reason), el("td", {}, e.message))));
  }
}

function clusterPage() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const id = `${parts[1]}/${parts[2]}`;
  connect(`?cluster=${encodeURIComponent(id)}`, (msg) => {
    const c = msg.clusters.find((x) => `${x.summary.namespace}/${x.summary.name}` === id);
    if (!c) { $("#reason").textContent = "this GenerationCluster is not (or no longer) managed"; return; }
    if (msg.type === "snapshot") loadHistory(c.history);
    else { dash.updates += 1; if (c.point) pushPoint(c.point); }
    dash.lastT = store.t.length ? store.t[store.t.length - 1] : null;
    renderState(c);
    drawCharts();
  });
}

if (page === "index") connect("?history=0&view=summary", (msg) => renderIndex(msg.clusters.map((c) => c.summary || c)));
else if (page === "cluster") clusterPage();
