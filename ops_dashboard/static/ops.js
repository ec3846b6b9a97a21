// The /ops page: filters in the URL, KPI cards, two synced ECharts on an Asia/Tokyo axis,
// recent alerts, auto/manual refresh, empty and error states, and the test-event button.
"use strict";

const CONFIG = JSON.parse(document.getElementById("ops-config").textContent);
const TZ = "Asia/Tokyo";
const PERIODS = ["1h", "6h", "24h", "7d"];
const $ = (id) => document.getElementById(id);
const form = $("filters");

const clock = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false });
const day = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, month: "2-digit", day: "2-digit" });
const full = new Intl.DateTimeFormat("sv-SE", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const jst = (t) => `${full.format(new Date(t))} JST`;
const axisLabel = (t) => {
  const d = new Date(t);
  return clock.format(d) === "00:00" || currentPeriod() === "7d" ? `${day.format(d)}\n${clock.format(d)}` : clock.format(d);
};

// ---- filter state <-> URL -------------------------------------------------------------
function readUrl() {
  const q = new URLSearchParams(location.search);
  const period = PERIODS.includes(q.get("period")) ? q.get("period") : "1h";
  return { env: q.get("env") || "", app: q.get("app") || "", event: q.get("event") || "", period, auto: q.get("auto") !== "off" };
}

function currentFilters() {
  const data = new FormData(form);
  return { env: data.get("env"), app: data.get("app"), event: data.get("event"), period: data.get("period"), auto: $("auto-refresh").checked };
}
const currentPeriod = () => form.elements.period.value;

function queryString(f, withDefaults) {
  const q = new URLSearchParams();
  for (const k of ["env", "app", "event"]) if (f[k]) q.set(k, f[k]);
  if (withDefaults || f.period !== "1h") q.set("period", f.period);
  if (!withDefaults && !f.auto) q.set("auto", "off");
  return q.toString();
}

function writeUrl(f) {
  const qs = queryString(f, false);
  history.replaceState(null, "", qs ? `?${qs}` : location.pathname);
}

function setOptions(select, values, chosen) {
  const keep = new Set(values);
  if (chosen) keep.add(chosen);
  select.replaceChildren(new Option("all", ""), ...[...keep].sort().map((v) => new Option(v, v)));
  select.value = chosen;
}

// ---- API --------------------------------------------------------------------------------
async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: reported below */ }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new Error(`${response.status} ${message}`);
  }
  return body;
}

// ---- charts -----------------------------------------------------------------------------
let p95Chart, outcomeChart;

function baseOption(range) {
  return {
    animation: false,
    grid: { left: 64, right: 48, top: 36, bottom: 64 },
    legend: { top: 4 },
    tooltip: { trigger: "axis", axisPointer: { type: "line", label: { formatter: (p) => jst(p.value) } } },
    xAxis: { type: "time", min: range.from, max: range.to, name: "JST", nameLocation: "end",
             axisLabel: { formatter: axisLabel, hideOverlap: true } },
    dataZoom: [{ type: "inside", filterMode: "none" }, { type: "slider", height: 16, bottom: 8, filterMode: "none",
                 labelFormatter: (v) => jst(v) }],
  };
}

function initCharts() {
  p95Chart = echarts.init($("chart-p95"));
  outcomeChart = echarts.init($("chart-outcomes"));
  // One group: zoom, scroll and the tooltip cursor move both charts together.
  p95Chart.group = "ops";
  outcomeChart.group = "ops";
  echarts.connect("ops");
  window.addEventListener("resize", () => { p95Chart.resize(); outcomeChart.resize(); });
}

function drawCharts(series) {
  const range = { from: series.from, to: series.to };
  const t = (p) => new Date(p.bucket).getTime();
  p95Chart.setOption({
    ...baseOption(range),
    yAxis: { type: "value", name: "p95 ms" },
    series: [{ name: "p95 latency (ms)", type: "line", showSymbol: false, connectNulls: false,
               data: series.points.map((p) => [t(p), p.p95_latency_ms]), color: "#3465c4" }],
  }, { notMerge: true });
  outcomeChart.setOption({
    ...baseOption(range),
    yAxis: { type: "value", name: "events" },
    series: [
      { name: "success", type: "bar", stack: "outcome", barMaxWidth: 14, color: "#2e9d5b",
        data: series.points.map((p) => [t(p), p.successes]) },
      { name: "failure", type: "bar", stack: "outcome", barMaxWidth: 14, color: "#d64545",
        data: series.points.map((p) => [t(p), p.failures]) },
    ],
  }, { notMerge: true });
}

// ---- cards, alerts, states --------------------------------------------------------------
const pct = (x) => `${(x * 100).toFixed(1)} %`;
const signed = (x, fmt) => (x > 0 ? `▲ ${fmt(x)}` : x < 0 ? `▼ ${fmt(-x)}` : "±0");

function drawCards(kpi) {
  $("kpi-total").textContent = kpi.total.toLocaleString("en-US");
  $("kpi-failure-rate").textContent = pct(kpi.failure_rate);
  $("kpi-p95").textContent = kpi.p95_latency_ms == null ? "–" : `${Math.round(kpi.p95_latency_ms)} ms`;
  const prev = kpi.previous;
  const change = (x, fmt) => (prev && x != null ? `${signed(x, fmt)} vs ${clock.format(new Date(prev.bucket))}` : "no previous window");
  $("kpi-total-change").textContent = change(kpi.change.total, (v) => v.toLocaleString("en-US"));
  $("kpi-failure-rate-change").textContent = change(kpi.change.failure_rate, (v) => `${(v * 100).toFixed(1)} pt`);
  $("kpi-p95-change").textContent = change(kpi.change.p95_latency_ms, (v) => `${Math.round(v)} ms`);
  $("kpi-window").textContent = `window ${jst(kpi.bucket)}${kpi.live ? " (open, live)" : ""}`;
}

function drawAlerts(alerts) {
  $("alert-list").replaceChildren(...alerts.map((a) => {
    const li = document.createElement("li");
    li.className = `sev-${a.severity} kind-${a.kind}`;
    li.textContent = `${jst(a.created_at)} — ${a.kind} ${a.severity} ${a.rule} ${a.app}/${a.env}/${a.event}: ${a.message}`;
    return li;
  }));
  $("no-alerts").hidden = alerts.length > 0;
}

function showState(state, text, retry) {
  document.body.dataset.state = state;
  $("status").hidden = state === "ready" || state === "loading";
  $("status-text").textContent = text || "";
  $("retry").hidden = !retry;
}

// ---- loading ----------------------------------------------------------------------------
let loading = null;

async function load() {
  if (loading) return loading;
  loading = (async () => {
    const qs = queryString(currentFilters(), true);
    const started = performance.now();
    try {
      const [series, card, alerts] = await Promise.all([
        api(`/api/ops/series?${qs}`), api(`/api/ops/kpi?${qs}`), api(`/api/ops/alerts?limit=20&${qs}`),
      ]);
      drawAlerts(alerts.alerts);
      if (series.points.length === 0 || card.kpi === null) {
        showState("empty", `No telemetry for these filters in the last ${currentPeriod()}. ` +
          "Send some: use the “Send test event” button, or POST events to the gateway's /telemetry (see the README).");
      } else {
        showState("ready");
        drawCharts(series);
        drawCards(card.kpi);
      }
      // Fetch to drawn, in ms: what a filter change costs (bench/dashboard.py reads it).
      const took = Math.round(performance.now() - started);
      document.body.dataset.loadMs = String(took);
      const now = new Date();
      $("last-updated").textContent = `updated ${clock.format(now)}:${String(now.getSeconds()).padStart(2, "0")} JST (${took} ms)`;
    } catch (error) {
      showState("error", `Could not load the dashboard data (${error.message}).`, true);
    } finally {
      document.body.dataset.loads = String(Number(document.body.dataset.loads) + 1);
      loading = null;
    }
  })();
  return loading;
}

async function loadFilterValues(chosen) {
  try {
    const values = await api("/api/ops/filters");
    setOptions(form.elements.env, values.envs, chosen.env);
    setOptions(form.elements.app, values.apps, chosen.app);
    setOptions(form.elements.event, values.events, chosen.event);
  } catch {
    // The main load reports the error state; the filters keep what the URL says.
    for (const k of ["env", "app", "event"]) setOptions(form.elements[k], [], chosen[k]);
  }
}

let timer = null;
function schedule() {
  clearInterval(timer);
  timer = $("auto-refresh").checked ? setInterval(load, CONFIG.refreshSeconds * 1000) : null;
}

async function sendTestEvent() {
  const button = $("send-test");
  button.disabled = true;
  try {
    const env = currentFilters().env;
    const sent = await api(`/api/ops/test-event${env ? `?env=${encodeURIComponent(env)}` : ""}`, { method: "POST" });
    $("test-result").textContent = `sent ${sent.event.app}/${sent.event.env}/${sent.event.event}`;
    // The event needs a moment to reach PostgreSQL through Kafka and the workers.
    for (const wait of [300, 1000, 2500]) setTimeout(load, wait);
  } catch (error) {
    $("test-result").textContent = `test event failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function main() {
  const chosen = readUrl();
  form.elements.period.value = chosen.period;
  $("auto-refresh").checked = chosen.auto;
  $("refresh-seconds").textContent = String(CONFIG.refreshSeconds);
  $("send-test").hidden = !CONFIG.testEvents;
  initCharts();
  await loadFilterValues(chosen);
  form.addEventListener("change", () => { writeUrl(currentFilters()); load(); });
  $("auto-refresh").addEventListener("change", () => { writeUrl(currentFilters()); schedule(); });
  $("refresh").addEventListener("click", async () => { await loadFilterValues(currentFilters()); load(); });
  $("retry").addEventListener("click", load);
  $("send-test").addEventListener("click", sendTestEvent);
  schedule();
  await load();
}

main();
