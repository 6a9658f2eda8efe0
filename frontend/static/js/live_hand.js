// Live 3D hand page: poses predicted from the armband's EMG arrive over a websocket
// (see webapp/live/consumers.py) and are drawn at the display's frame rate. Shows
// poses/s, frames/s, end-to-end latency (the armband sample a pose ends at, on the
// agent's clock, to the frame that draws it), the pose status and the connection;
// reconnects by itself. Camera label frames, when the agent sends them, are drawn
// beside the prediction with a running MPJPE.
import { HandView, NUM_JOINTS } from "./hand_renderer.js";

const LABEL_OFFSET_MM = 220; // the label hand stands this far right of the prediction
const RATE_WINDOW_MS = 2000; // poses/s and frames/s are counted over this window
const LATENCY_KEEP = 300; // rendered poses in the latency percentiles (~12 s)
const PREDICTIONS_KEEP_S = 2; // predictions kept to pair with camera labels
const LABEL_MATCH_S = 0.05; // a label pairs with a prediction at most this far apart
const LABEL_ERRORS_KEEP = 200; // labels in the running MPJPE
const QUIET_AFTER_MS = 2000; // no pose for this long: say so

const root = document.getElementById("hand");
const models = JSON.parse(document.getElementById("models-data").textContent);
const controls = {
  model: document.getElementById("model"),
  smoothingOn: document.getElementById("smoothing-on"),
  minCutoff: document.getElementById("min-cutoff"),
  beta: document.getElementById("beta"),
};
// the page's state; tests (and the curious) read the counters as window.liveHand
const live = {
  socket: null,
  connections: 0,
  runId: models.length ? models[0].id : null,
  newestPose: null,
  poseDrawn: true,
  posesReceived: 0,
  framesRendered: 0,
  receivedAtMs: [],
  renderedAtMs: [],
  latenciesMs: [],
  predictions: [], // {t, joints}
  labelErrorsMm: [],
  handleMessage,
};
window.liveHand = live;

const view = new HandView(document.getElementById("viewer"), { preserveDrawingBuffer: true });
const predicted = view.addHand({ color: 0x2f6fed });
const labeled = view.addHand({ color: 0xe07b39, offsetMm: [LABEL_OFFSET_MM, 0, 0] });
labeled.visible = false;

function nowMs() {
  return performance.timeOrigin + performance.now(); // unix ms, like the agent's clock
}

function show(id, text) {
  document.getElementById(id).textContent = text;
}

function showMessage(text) {
  const element = document.getElementById("message");
  element.textContent = text || "";
  element.hidden = !text;
}

function send(message) {
  if (live.socket?.readyState === WebSocket.OPEN) live.socket.send(JSON.stringify(message));
}

// ------------------------------------------------------------------ messages

function handleMessage(message) {
  const handlers = { session: onSession, model: onModel, pose: onPose, labels: onLabels,
                     agent: onAgent, smoothing: (m) => showSmoothing(m.smoothing), error: onError };
  handlers[message.type]?.(message);
}

function onSession(message) {
  if (!message.recording) {
    showMessage(`This session is ${message.status.replace("_", " ")}: poses appear while it records. ` +
                "Start the recording on the session page.");
  }
}

function onModel(message) {
  showMessage("");
  showSmoothing(message.smoothing);
  show("update-ms", `${message.model_name} loaded`);
}

function onPose(message) {
  live.posesReceived += 1;
  root.dataset.posesReceived = String(live.posesReceived);
  live.lastPoseAtMs = nowMs();
  live.receivedAtMs.push(live.lastPoseAtMs);
  live.newestPose = message;
  live.poseDrawn = false;
  live.predictions.push({ t: message.t, joints: message.joints });
  while (live.predictions.length && live.predictions[0].t < message.t - PREDICTIONS_KEEP_S) {
    live.predictions.shift();
  }
  const status = document.getElementById("pose-status");
  status.textContent = message.status;
  status.className = `status ${message.status}`;
  show("update-ms", `${message.update_ms.toFixed(1)} ms`);
  showGesture(message);
}

function showGesture(message) {
  if (message.gesture === undefined) return;
  const confidencePct = Math.round(100 * message.gesture_confidence);
  show("gesture", message.gesture ? `${message.gesture} · ${confidencePct} %` : "none near");
}

function onLabels(message) {
  labeled.setJoints(message.joints);
  if (!labeled.group.visible) {
    labeled.visible = true;
    view.frame([0, LABEL_OFFSET_MM]);
  }
  const prediction = nearestPrediction(message.t);
  if (!prediction) return;
  live.labelErrorsMm.push(meanJointDistanceMm(prediction.joints, message.joints));
  if (live.labelErrorsMm.length > LABEL_ERRORS_KEEP) live.labelErrorsMm.shift();
  const mean = live.labelErrorsMm.reduce((a, b) => a + b, 0) / live.labelErrorsMm.length;
  show("mpjpe", `MPJPE ${mean.toFixed(1)} mm over ${live.labelErrorsMm.length} frames`);
}

function nearestPrediction(timeS) {
  let best = null;
  for (const prediction of live.predictions) {
    const apart = Math.abs(prediction.t - timeS);
    if (apart <= LABEL_MATCH_S && (!best || apart < Math.abs(best.t - timeS))) best = prediction;
  }
  return best;
}

function meanJointDistanceMm(a, b) {
  let sum = 0;
  for (let j = 0; j < NUM_JOINTS; j++) {
    sum += Math.hypot(a[3 * j] - b[3 * j], a[3 * j + 1] - b[3 * j + 1], a[3 * j + 2] - b[3 * j + 2]);
  }
  return sum / NUM_JOINTS;
}

function onAgent(message) {
  const states = {
    streaming: "streaming",
    disconnected: "disconnected: waiting for it to reconnect",
    stopped: "recording stopped",
  };
  show("agent-state", states[message.state] || message.state);
}

function onError(message) {
  showMessage(message.message);
}

// ------------------------------------------------------------------ controls

function showSmoothing(smoothing) {
  controls.smoothingOn.checked = Boolean(smoothing?.enabled);
  if (smoothing?.enabled) {
    controls.minCutoff.value = smoothing.min_cutoff_hz;
    controls.beta.value = smoothing.beta;
  }
}

function sendSmoothing() {
  const minCutoffHz = Number(controls.minCutoff.value);
  const beta = Number(controls.beta.value);
  if (!(minCutoffHz > 0) || !(beta >= 0)) {
    showMessage("Min cutoff must be a positive number of Hz and beta zero or more.");
    return;
  }
  send({ type: "smoothing", enabled: controls.smoothingOn.checked, min_cutoff_hz: minCutoffHz, beta });
}

function selectModel() {
  live.runId = Number(controls.model.value) || null;
  live.predictions = [];
  if (live.runId) send({ type: "select", run: live.runId });
}

controls.model.addEventListener("change", selectModel);
[controls.smoothingOn, controls.minCutoff, controls.beta].forEach((input) => {
  input.addEventListener("change", sendSmoothing);
});

// ------------------------------------------------------------------ drawing and stats

// Called every animation frame; true when there is a new pose to draw.
function beforeRender() {
  if (!live.newestPose || live.poseDrawn) return false;
  const now = nowMs();
  predicted.setJoints(live.newestPose.joints);
  live.poseDrawn = true;
  live.framesRendered += 1;
  live.renderedAtMs.push(now);
  live.latenciesMs.push(now - live.newestPose.t * 1000);
  if (live.latenciesMs.length > LATENCY_KEEP) live.latenciesMs.shift();
  return true;
}

function perSecond(timesMs, now) {
  while (timesMs.length && timesMs[0] < now - RATE_WINDOW_MS) timesMs.shift();
  return (timesMs.length * 1000) / RATE_WINDOW_MS;
}

function percentile(values, fraction) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

function showStats() {
  const now = nowMs();
  const poseRate = perSecond(live.receivedAtMs, now);
  live.posesPerSecond = poseRate;
  show("pose-rate", poseRate.toFixed(1));
  show("fps", perSecond(live.renderedAtMs, now).toFixed(0));
  if (live.latenciesMs.length) {
    const p50 = percentile(live.latenciesMs, 0.5);
    const p99 = percentile(live.latenciesMs, 0.99);
    show("latency", `${p50.toFixed(0)} / ${p99.toFixed(0)} ms`);
  }
  if (live.lastPoseAtMs && now - live.lastPoseAtMs > QUIET_AFTER_MS) {
    show("pose-status", `no pose for ${((now - live.lastPoseAtMs) / 1000).toFixed(0)} s`);
    document.getElementById("pose-status").className = "status held";
  }
}

// The server throttles poses to the display's refresh rate. A busy page misses
// frames, but its fastest frame intervals still show the refresh period.
function measureDisplayRate(then) {
  const started = performance.now();
  let previous = started;
  let shortestMs = Infinity;
  const count = (now) => {
    shortestMs = Math.min(shortestMs, now - previous);
    previous = now;
    if (now - started < 1000) requestAnimationFrame(count);
    else then(Math.min(Math.max(Math.round(1000 / shortestMs), 30), 240));
  };
  requestAnimationFrame(count);
}

// ------------------------------------------------------------------ connection

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
  live.socket = socket;
  socket.onopen = () => {
    live.connections += 1;
    show("connection", live.connections > 1 ? `reconnected (${live.connections - 1}×)` : "connected");
    if (live.displayRateHz) send({ type: "display", rate_hz: live.displayRateHz });
    if (live.runId) send({ type: "select", run: live.runId });
  };
  socket.onmessage = (event) => handleMessage(JSON.parse(event.data));
  socket.onclose = () => {
    show("connection", "connection lost: reconnecting…");
    setTimeout(connect, 1000); // the server restarted or the network blinked: come back
  };
}

connect();
measureDisplayRate((rateHz) => {
  live.displayRateHz = rateHz;
  send({ type: "display", rate_hz: rateHz });
});
view.start(beforeRender);
setInterval(showStats, 500);
