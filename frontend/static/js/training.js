// Training run page: progress with a time estimate, live learning curves and the log,
// then the finished model's per-joint error chart (the compare page draws that too).
// Epochs arrive over a websocket as "training.epoch" messages; the page also polls
// the status JSON (#run's data-poll-ms: each second in the embedded mode, where the
// worker cannot reach the browser's channel layer), so it keeps up when the socket
// is down.
import uPlot from "../vendor/uplot/uPlot.esm.js";

const ACTIVE = ["queued", "running", "interrupted"]; // may still change by itself
const COLORS = ["#2f6fed", "#9aa3b2", "#e07b39", "#2e8b57"];
const root = document.getElementById("run");
let history = []; // the epochs' metrics, in epoch order
let curves = null; // {mpjpe, loss}: uPlot charts

function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

function lineChart(container, series) {
  const opts = {
    width: container.clientWidth || 500,
    height: 240,
    scales: { x: { time: false } },
    axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] }, { size: 55 }],
    series: [
      { label: "epoch" },
      ...series.map(([label, color]) => ({ label, stroke: color, width: 2, points: { show: true } })),
    ],
  };
  return new uPlot(opts, [[], ...series.map(() => [])], container);
}

function makeCurves() {
  const pair = [["train", COLORS[0]], ["validation", COLORS[2]]];
  curves = {
    mpjpe: lineChart(document.getElementById("mpjpe-chart"), pair),
    loss: lineChart(document.getElementById("loss-chart"), pair),
  };
}

function drawCurves() {
  const epochs = history.map((h) => h.epoch);
  const column = (key) => history.map((h) => h[key]);
  curves.mpjpe.setData([epochs, column("train_mpjpe_mm"), column("val_mpjpe_mm")]);
  curves.loss.setData([epochs, column("train_loss"), column("val_loss")]);
  root.dataset.epochsPlotted = String(epochs.length);
  const last = history[history.length - 1];
  const validation = last?.val_mpjpe_mm == null ? "—" : last.val_mpjpe_mm.toFixed(2);
  document.getElementById("curve-info").textContent = last
    ? `validation ${validation} mm after epoch ${last.epoch}`
    : "waiting for the first epoch…";
}

function addEpoch(metrics) {
  history = history.filter((h) => h.epoch !== metrics.epoch).concat([metrics]);
  history.sort((a, b) => a.epoch - b.epoch);
  drawCurves();
}

// Grouped bars: one group per joint, one bar per series (model, baseline, ...).
function perJointChart(container, data) {
  const series = data.series.filter((s) => s.values);
  if (!container || !series.length) return;
  const joints = data.joints;
  const width = 0.8 / series.length;
  const align = (i) => (series.length === 2 ? [-1, 1][i] : 0);
  const opts = {
    width: container.clientWidth || 800,
    height: 260,
    cursor: { show: false },
    scales: {
      x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] },
      y: { range: (u, min, max) => [0, (max || 1) * 1.1] },
    },
    axes: [
      { values: (u, ticks) => ticks.map((i) => joints[i] ?? ""), rotate: -45, size: 80, space: 10 },
      { label: "mm", size: 55 },
    ],
    series: [
      { label: "joint" },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i],
        fill: COLORS[i] + "99",
        paths: uPlot.paths.bars({ size: [width], align: align(i) }),
        points: { show: false },
      })),
    ],
  };
  container.innerHTML = "";
  new uPlot(opts, [joints.map((_, i) => i), ...series.map((s) => s.values)], container);
  container.dataset.series = String(series.length);
}

function formatSeconds(seconds) {
  if (seconds == null) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  return seconds < 5400 ? `${Math.round(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`;
}

function showStatus(run) {
  const badge = document.getElementById("status");
  badge.textContent = run.status_label;
  badge.className = `status ${run.status}`;
  document.getElementById("epoch").textContent = `${run.epoch} / ${run.epochs}`;
  const bar = document.getElementById("progress");
  bar.max = run.epochs || 1;
  bar.value = run.epoch;
  document.getElementById("eta").textContent = formatSeconds(run.seconds_left);
  document.getElementById("log").textContent = run.log_tail;
  if (run.error) {
    const error = document.getElementById("error");
    error.textContent = run.error;
    error.hidden = false;
  }
}

// A new status brings other buttons and sections: the server draws those.
async function poll() {
  try {
    const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
    const run = await response.json();
    if (run.status !== root.dataset.status) {
      location.reload();
      return;
    }
    showStatus(run);
    if (run.history.length >= history.length) {
      history = run.history;
      drawCurves();
    }
  } catch (error) {
    document.getElementById("eta").textContent = "server unreachable, retrying…";
  }
  if (ACTIVE.includes(root.dataset.status)) setTimeout(poll, Number(root.dataset.pollMs));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "training.epoch") addEpoch(message.metrics);
  };
  socket.onclose = () => setTimeout(connect, 2000); // the server restarted: come back
}

if (root) {
  history = readJson("history-data") || [];
  makeCurves();
  drawCurves();
  if (ACTIVE.includes(root.dataset.status)) {
    connect();
    poll();
  }
}
const perJoint = readJson("per-joint-data");
if (perJoint) perJointChart(document.getElementById("per-joint"), perJoint);
