// Live recording page: scrolling EMG traces, signal quality, status polling.
// Samples arrive over a websocket as "live.emg" messages (see webapp/recordings/ingest.py).
// Other modules on the page (protocol_runner.js) share the socket: every message is
// also dispatched on #live as a "live-message" event, "live-open" says the socket
// (re)connected, and window.liveRecording.send(message) sends JSON on it.
import uPlot from "../vendor/uplot/uPlot.esm.js";

const WINDOW_S = 5; // seconds of EMG on screen
const root = document.getElementById("live");
let plots = [];
let channelData = []; // per channel: {t: [], v: []}
let samplesSeen = 0;
let dirty = false;

function makePlots(numChannels) {
  const container = document.getElementById("traces");
  container.innerHTML = "";
  plots = [];
  channelData = [];
  for (let c = 0; c < numChannels; c++) {
    channelData.push({ t: [], v: [] });
    const isLast = c === numChannels - 1;
    const opts = {
      width: container.clientWidth || 800,
      height: isLast ? 135 : 80, // the last chart also carries the time axis
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { range: symmetricRange } },
      axes: [
        { show: isLast, label: isLast ? "seconds" : undefined },
        { size: 60, label: `ch${c + 1} µV`, labelSize: 14, splits: (u) => symmetricTicks(u) },
      ],
      series: [{}, { stroke: `hsl(${(c * 45) % 360} 65% 45%)`, width: 1 }],
    };
    plots.push(new uPlot(opts, [[], []], container));
  }
}

// EMG is centred on zero: show ±peak so every channel's scale reads at a glance.
function symmetricRange(u, min, max) {
  const peak = Math.max(Math.abs(min ?? 0), Math.abs(max ?? 0), 10);
  return [-peak, peak];
}

function symmetricTicks(u) {
  const peak = u.scales.y.max;
  return [-Math.round(peak), 0, Math.round(peak)];
}

function appendSamples(message) {
  if (plots.length !== message.emg.length) makePlots(message.emg.length);
  const n = message.emg[0].length;
  message.emg.forEach((values, c) => {
    const series = channelData[c];
    for (let i = 0; i < n; i++) {
      series.t.push(message.t0 + i * message.dt);
      series.v.push(values[i]);
    }
    const newest = series.t[series.t.length - 1];
    let drop = 0;
    while (drop < series.t.length && series.t[drop] < newest - WINDOW_S) drop++;
    series.t.splice(0, drop);
    series.v.splice(0, drop);
  });
  samplesSeen += n;
  dirty = true;
  document.getElementById("dropped").textContent = message.dropped_packets;
  document.getElementById("samples").textContent = message.samples_stored;
  document.getElementById("trace-info").textContent = `live · ${message.chunks_stored} chunks stored`;
  if (message.quality) showQuality(message.quality);
}

function draw() {
  if (dirty) {
    const t0 = channelData[0].t[0];
    plots.forEach((plot, c) => {
      plot.setData([channelData[c].t.map((t) => t - t0), channelData[c].v]);
    });
    root.dataset.samplesDrawn = String(samplesSeen);
    dirty = false;
  }
  requestAnimationFrame(draw);
}

function percent(x) {
  return `${(100 * x).toFixed(1)} %`;
}

function showQuality(channels) {
  const body = document.querySelector("#quality tbody");
  body.innerHTML = "";
  channels.forEach((q, c) => {
    const row = body.insertRow();
    row.className = q.problem ? "bad" : "ok";
    [`ch${c + 1}`, q.rms_uv.toFixed(1), percent(q.line_noise_ratio), percent(q.clipped_fraction),
     q.problem || "good"].forEach((text) => { row.insertCell().textContent = text; });
  });
}

let socket = null;

window.liveRecording = {
  /** Send a JSON message to the server; false when the socket is not open. */
  send(message) {
    if (socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  },
};

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
  socket.onopen = () => root.dispatchEvent(new CustomEvent("live-open"));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "live.emg") appendSamples(message);
    root.dispatchEvent(new CustomEvent("live-message", { detail: message }));
  };
  socket.onclose = () => setTimeout(connect, 1000); // the server restarted: come back
}

// The buttons on offer depend on the status and on which agents are online, so the
// page reloads when either changes; traces resume from the websocket.
async function pollStatus() {
  try {
    const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
    const status = await response.json();
    const agentsOnline = status.agents_online.map((a) => a.id).join(",");
    root.dataset.agentsOnline ??= agentsOnline;
    const waitingForAgent = status.status === "created" && agentsOnline !== root.dataset.agentsOnline;
    if (status.status !== root.dataset.status || waitingForAgent) {
      location.reload();
      return;
    }
    if (status.sample_count) document.getElementById("samples").textContent = status.sample_count;
    const agent = status.agent;
    document.getElementById("agent-status").textContent = agent
      ? `${agent.name} · ${agent.online ? "connected" : "offline"}`
      : `${status.agents_online.length} connected`;
  } catch (error) {
    document.getElementById("agent-status").textContent = "server unreachable, retrying…";
  }
  setTimeout(pollStatus, 2000);
}

connect();
pollStatus();
requestAnimationFrame(draw);
