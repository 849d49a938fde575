// swell dashboard: polls the API with the user's token, one plot per deployment (one time axis:
// load; TTFT and e2e p50/p95 with the SLO; replicas with scale events; each signal and its target)
// and a scrolling list of decisions. No data from the server is ever put in the page as HTML.
"use strict";

const REFRESH_MS = 1000;
const state = { token: null, deps: new Map() };

function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("swell-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);  // the token leaves the address bar
  }
  return sessionStorage.getItem("swell-token");
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
  if (r.status === 401 || r.status === 403) {
    sessionStorage.removeItem("swell-token");
    showLogin((await r.json()).error);
    throw new Error("unauthorized");
  }
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function showLogin(why) {
  state.token = null;
  const form = document.getElementById("login");
  form.hidden = false;
  document.getElementById("status").textContent = why || "token needed";
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = document.getElementById("token").value.trim();
  if (!v) return;
  sessionStorage.setItem("swell-token", v);
  state.token = v;
  document.getElementById("login").hidden = true;
  tick();
});

function fmtTime(t) { return new Date(t * 1000).toLocaleTimeString([], { hour12: false }); }

function newDeployment(name) {
  const node = document.getElementById("deployment").content.firstElementChild.cloneNode(true);
  node.dataset.deployment = name;
  node.dataset.points = "0";
  node.querySelector(".name").textContent = name;
  document.getElementById("deployments").appendChild(node);
  const d = { name, node, samples: [], decisions: [], since: 0, dsince: 0, slo: {}, plotted: false };
  state.deps.set(name, d);
  return d;
}

function col(samples, key) { return samples.map((s) => s[key]); }

function traces(d) {
  const s = d.samples;
  const x = s.map((p) => new Date(p.t * 1000));
  const out = [
    { x, y: col(s, "offered_rps"), name: "offered req/s", yaxis: "y", line: { color: "#1f77b4" } },
    { x, y: col(s, "rps"), name: "answered req/s", yaxis: "y", line: { color: "#6baed6", dash: "dash" } },
    { x, y: col(s, "in_gateway"), name: "in gateway", yaxis: "y", line: { color: "#9ecae1", dash: "dot" } },
    { x, y: col(s, "ttft_p50"), name: "TTFT p50", yaxis: "y2", line: { color: "#2ca02c" } },
    { x, y: col(s, "ttft_p95"), name: "TTFT p95", yaxis: "y2", line: { color: "#98df8a" } },
    { x, y: col(s, "e2e_p50"), name: "e2e p50", yaxis: "y2", line: { color: "#d62728" } },
    { x, y: col(s, "e2e_p95"), name: "e2e p95", yaxis: "y2", line: { color: "#ff9896" } },
    { x, y: col(s, "ready"), name: "ready", yaxis: "y3", stackgroup: "r", line: { color: "#2ca02c", shape: "hv" } },
    { x, y: col(s, "starting"), name: "starting", yaxis: "y3", stackgroup: "r", line: { color: "#ffbb78", shape: "hv" } },
    { x, y: col(s, "pending"), name: "pending", yaxis: "y3", stackgroup: "r", line: { color: "#c5b0d5", shape: "hv" } },
    { x, y: col(s, "target"), name: "target", yaxis: "y3", line: { color: "#333", dash: "dash", shape: "hv" } },
  ];
  for (const [key, label] of [["ttft_s", "TTFT SLO"], ["e2e_s", "e2e SLO"]]) {
    const v = d.slo[key];
    if (v != null && x.length) out.push({ x: [x[0], x[x.length - 1]], y: [v, v], name: label, yaxis: "y2", mode: "lines", line: { color: "#555", dash: "dot", width: 1 } });
  }
  const events = d.decisions.filter((e) => e.desired !== e.current);
  out.push({
    x: events.map((e) => new Date(e.t * 1000)), y: events.map((e) => e.desired), yaxis: "y3",
    mode: "markers", name: "scale events", marker: { symbol: "diamond", size: 9, color: "#d62728" },
    text: events.map((e) => `${e.current}→${e.desired} (${e.bound_by}): ${e.reason}`), hoverinfo: "text+x",
  });
  const names = s.length ? Object.keys(s[s.length - 1].signals) : [];
  const palette = ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  names.forEach((n, i) => {
    const c = palette[i % palette.length];
    out.push({ x, y: s.map((p) => p.signals[n]), name: n, yaxis: "y4", line: { color: c } });
    out.push({ x, y: s.map((p) => p.targets[n]), name: n + " target", yaxis: "y4", line: { color: c, dash: "dash", width: 1 } });
  });
  return out.map((t) => ({ mode: "lines", type: "scatter", ...t }));
}

function layout() {
  return {
    margin: { l: 60, r: 10, t: 10, b: 30 }, showlegend: true, legend: { orientation: "h", y: -0.06 },
    grid: { rows: 4, columns: 1, pattern: "coupled", roworder: "top to bottom" },
    xaxis: { type: "date" },
    yaxis: { title: { text: "load" }, rangemode: "tozero" },
    yaxis2: { title: { text: "latency s" }, rangemode: "tozero" },
    yaxis3: { title: { text: "replicas" }, rangemode: "tozero", dtick: 1 },
    yaxis4: { title: { text: "signals" }, rangemode: "tozero" },
    uirevision: "keep",
  };
}

function draw(d) {
  const el = d.node.querySelector(".chart");
  if (typeof Plotly === "undefined") {
    el.textContent = "charts need plotly: pip install plotly (swell's api extra)";
    return;
  }
  Plotly.react(el, traces(d), layout(), { displaylogo: false, responsive: true });
  d.node.dataset.points = String(d.samples.length);
  d.node.dataset.lastT = d.samples.length ? String(d.samples[d.samples.length - 1].t) : "";
}

function listDecisions(d, fresh) {
  const ol = d.node.querySelector(".decisions");
  for (const e of fresh) {
    const li = document.createElement("li");
    if (e.desired !== e.current) li.className = "scale";
    const t = document.createElement("span"); t.className = "t"; t.textContent = fmtTime(e.t);
    const b = document.createElement("span"); b.className = "b"; b.textContent = `${e.current}→${e.desired} · ${e.bound_by}`;
    li.append(t, b, document.createTextNode(" " + e.reason));
    ol.prepend(li);
  }
  while (ol.children.length > 500) ol.lastChild.remove();
}

async function refresh(summary) {
  const d = state.deps.get(summary.name) || newDeployment(summary.name);
  const r = summary.replicas;
  d.node.querySelector(".meta").textContent =
    `${summary.engine} · ${summary.policy} · ${summary.url} · target ${r.target}: ${r.ready} ready, ` +
    `${r.starting} starting, ${r.pending} pending · min ${summary.min_replicas} max ${summary.max_replicas}` +
    (summary.failure ? ` · FAILED: ${summary.failure}` : "");
  const ts = await api(`/deployments/${encodeURIComponent(d.name)}/timeseries?since=${d.since}`);
  d.slo = ts.slo;
  if (ts.samples.length) {
    d.samples.push(...ts.samples);
    d.since = ts.samples[ts.samples.length - 1].t;
    if (d.samples.length > 3600) d.samples.splice(0, d.samples.length - 3600);
  }
  const dec = await api(`/deployments/${encodeURIComponent(d.name)}/decisions?since=${d.dsince}`);
  if (dec.decisions.length) {
    d.decisions.push(...dec.decisions);
    d.dsince = dec.decisions[dec.decisions.length - 1].t;
    if (d.decisions.length > 2000) d.decisions.splice(0, d.decisions.length - 2000);
    listDecisions(d, dec.decisions);
  }
  draw(d);
}

async function tick() {
  if (!state.token) return;
  try {
    const all = await api("/deployments");
    const seen = new Set(all.deployments.map((s) => s.name));
    for (const [name, d] of state.deps) if (!seen.has(name)) { d.node.remove(); state.deps.delete(name); }
    await Promise.all(all.deployments.map(refresh));
    document.getElementById("status").textContent =
      `${all.deployments.length} deployment(s) · updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.ready = "1";
  } catch (e) {
    if (state.token) document.getElementById("status").textContent = "error: " + e.message;
  }
}

state.token = takeToken();
if (!state.token) showLogin();
window.addEventListener("hashchange", () => {  // a #token= link opened in this tab
  const t = takeToken();
  if (t && t !== state.token) {
    state.token = t;
    document.getElementById("login").hidden = true;
    tick();
  }
});
tick();
setInterval(tick, REFRESH_MS);
