// The recording page's guided protocol: a signal check, then each step's prompt
// with a countdown, an overall progress bar and a 3D target hand; pause, resume and
// redo. Every step start and end, pause, resume and redo is sent to the server as a
// "protocol.event" on the live socket (webapp/protocols/events.py), which times it
// on the EMG's clock and stores it for the session file. Events wait in an outbox
// until the server acknowledges them; a resend is stored once.
// The page's state is window.protocolRunner (tests read it).
import { ProtocolHands } from "./protocol_hands.js";
import { showSignalCheck } from "./signal_check.js";

const TICK_MS = 50; // how often the countdown and the target hand move
const RESEND_MS = 2000; // an unacknowledged event is sent again after this
const CLOCK_RETRY_MS = 400; // the server has no EMG yet to time an event by
const STOP_AFTER_MS = 1500; // after the last step, a little more EMG before stopping

const live = document.getElementById("live");
const panel = document.getElementById("protocol");
const runner = JSON.parse(document.getElementById("runner-data").textContent);
const protocol = runner.protocol;
const phases = buildPhases(protocol.steps);
const totalS = phases.reduce((sum, phase) => sum + phase.durationS, 0);
const runId = `${live.dataset.session}-${Date.now().toString(36)}`;
const outbox = new Map(); // event_id -> {message, createdMs, sentMs}
const state = {
  running: false, paused: false, done: false, phaseIndex: -1, phaseStartedMs: 0,
  lastHeldStep: null, eventsSent: 0, eventsAcked: 0, outbox,
};
window.protocolRunner = state;
let hands = null;

/** Each repetition: a rest (the prompt says what comes next), then the hold. */
function buildPhases(steps) {
  const list = [];
  steps.forEach((step, stepIndex) => {
    for (let repetition = 1; repetition <= step.repetitions; repetition++) {
      if (step.rest_s > 0) list.push({ type: "rest", step, stepIndex, repetition, durationS: step.rest_s });
      list.push({ type: "hold", step, stepIndex, repetition, durationS: step.hold_s });
    }
  });
  return list;
}

function show(id, text) {
  document.getElementById(id).textContent = text;
}

function showMessage(text) {
  const element = document.getElementById("protocol-message");
  element.textContent = text || "";
  element.hidden = !text;
}

// ------------------------------------------------------------------ events

function emit(kind, name, detail, atMs = performance.now()) {
  state.eventsSent += 1;
  const eventId = `${runId}-${state.eventsSent}`;
  const message = { type: "protocol.event", event_id: eventId, kind, name, detail };
  outbox.set(eventId, { message, createdMs: atMs, sentMs: -Infinity });
  flush();
}

function stepDetail(phase, extra = {}) {
  const step = phase.step;
  return { step: phase.stepIndex, step_name: step.name, repetition: phase.repetition,
           repetitions: step.repetitions, gesture: step.gesture, hold_s: step.hold_s,
           free_movement: step.free_movement, ...extra };
}

/** Send what is due: new events, and old ones the server has not acknowledged. */
function flush(nowMs = performance.now()) {
  for (const entry of outbox.values()) {
    if (nowMs - entry.sentMs < RESEND_MS) continue;
    const ageMs = Math.max(0, Math.round(nowMs - entry.createdMs));
    if (window.liveRecording.send({ ...entry.message, age_ms: ageMs })) entry.sentMs = nowMs;
  }
  show("pending-events", outbox.size ? `${outbox.size} events waiting to be saved` : "all events saved");
}

function onAck(message) {
  if (!outbox.delete(message.event_id)) return;
  state.eventsAcked += 1;
  panel.dataset.eventsAcked = String(state.eventsAcked);
  flush();
}

function onEventError(message) {
  const entry = outbox.get(message.event_id);
  if (entry && message.code === "clock_not_ready") {
    entry.sentMs = performance.now() - RESEND_MS + CLOCK_RETRY_MS;
    return;
  }
  outbox.delete(message.event_id);
  showMessage(`A protocol event was refused: ${message.message}`);
}

// ------------------------------------------------------------------ the steps

function begin() {
  state.running = true;
  panel.dataset.phase = "run";
  document.getElementById("protocol-check").hidden = true;
  document.getElementById("protocol-run").hidden = false;
  hands = new ProtocolHands(document.getElementById("protocol-hands"), runner);
  emit("protocol.start", protocol.name, { protocol, duration_s: totalS });
  enterPhase(0);
  setInterval(tick, TICK_MS);
}

function enterPhase(index, atMs = performance.now()) {
  if (index >= phases.length) {
    finish();
    return;
  }
  state.phaseIndex = index;
  state.phaseStartedMs = atMs;
  const phase = phases[index];
  if (phase.type === "hold") {
    emit("step.start", phase.step.gesture, stepDetail(phase), atMs);
    state.lastHeldStep = phase.stepIndex;
    document.getElementById("protocol-redo").disabled = false;
  }
  hands.enterPhase();
  showPhase(phase);
}

function showPhase(phase) {
  const step = phase.step;
  show("step-title", `Step ${phase.stepIndex + 1} of ${protocol.steps.length} · ${step.name}` +
       ` · repetition ${phase.repetition} of ${step.repetitions}`);
  show("prompt", phase.type === "rest" ? `Rest. Next: ${step.prompt}` : step.prompt);
  show("phase-label", phase.type === "rest" ? "relax" : step.free_movement ? "move freely" : "hold");
  panel.dataset.step = String(phase.stepIndex);
}

function tick() {
  flush();
  if (!state.running || state.paused) return;
  const nowMs = performance.now();
  const phase = phases[state.phaseIndex];
  const endMs = state.phaseStartedMs + phase.durationS * 1000;
  if (nowMs >= endMs) {
    // the next phase starts when this one was due to end: no drift over the steps
    if (phase.type === "hold") emit("step.end", phase.step.gesture, stepDetail(phase, { completed: true }), endMs);
    enterPhase(state.phaseIndex + 1, endMs);
    return;
  }
  const elapsedS = (nowMs - state.phaseStartedMs) / 1000;
  hands.update(phase, elapsedS);
  show("countdown", Math.ceil(phase.durationS - elapsedS).toString());
  const doneS = phases.slice(0, state.phaseIndex).reduce((sum, p) => sum + p.durationS, 0) + elapsedS;
  document.getElementById("protocol-progress").value = doneS / totalS;
  show("progress-text", `${Math.floor((100 * doneS) / totalS)} % of about ${Math.round(totalS)} s`);
}

/** Cut a hold short (pause or redo): its end is marked as not completed. */
function interruptHold() {
  const phase = phases[state.phaseIndex];
  if (phase.type === "hold" && !state.paused) {
    emit("step.end", phase.step.gesture, stepDetail(phase, { completed: false }));
  }
}

function pause() {
  if (!state.running || state.paused) return;
  interruptHold();
  const phase = phases[state.phaseIndex];
  emit("protocol.pause", protocol.name, stepDetail(phase, { phase: phase.type }));
  state.paused = true;
  panel.dataset.paused = "true";
  show("phase-label", "paused: resume repeats this repetition");
  document.getElementById("protocol-pause").hidden = true;
  document.getElementById("protocol-resume").hidden = false;
}

function resume() {
  if (!state.paused) return;
  emit("protocol.resume", protocol.name, stepDetail(phases[state.phaseIndex]));
  state.paused = false;
  panel.dataset.paused = "false";
  document.getElementById("protocol-pause").hidden = false;
  document.getElementById("protocol-resume").hidden = true;
  enterPhase(state.phaseIndex);
}

/** Start the most recently held step again from its first repetition. */
function redo() {
  if (!state.running || state.lastHeldStep === null) return;
  interruptHold();
  const first = phases.findIndex((phase) => phase.stepIndex === state.lastHeldStep);
  emit("step.redo", phases[first].step.gesture, stepDetail(phases[first]));
  if (state.paused) {
    state.phaseIndex = first; // resume starts there
    showPhase(phases[first]);
  } else {
    enterPhase(first);
  }
}

function finish() {
  state.running = false;
  state.done = true;
  emit("protocol.end", protocol.name, { completed: true, duration_s: totalS });
  panel.dataset.phase = "done";
  document.getElementById("protocol-run").hidden = true;
  document.getElementById("protocol-done").hidden = false;
  setTimeout(stopWhenSaved, STOP_AFTER_MS);
}

/** Stop the recording once the server has every event (they are in the file). */
function stopWhenSaved() {
  if (outbox.size) {
    setTimeout(stopWhenSaved, 200);
    return;
  }
  document.getElementById("stop-form")?.submit();
}

// ------------------------------------------------------------------ wiring

function onLiveMessage(event) {
  const message = event.detail;
  if (message.type === "protocol.ack") onAck(message);
  else if (message.type === "protocol.error") onEventError(message);
  else if (message.type === "live.emg" && message.quality && !state.running) onQuality(message.quality);
  else if (message.type === "live.labels" && hands?.showLabels(message)) panel.dataset.labels = "seen";
  else if (message.type === "live.camera") onCamera(message);
}

function onQuality(quality) {
  const bad = showSignalCheck(quality);
  show("check-summary", bad ? `${bad} channel(s) need attention: see the advice; you can begin anyway`
                            : "all channels look good");
  document.getElementById("protocol-begin").disabled = false;
}

function onCamera(message) {
  const facts = [message.state];
  if (message.state === "ok") facts.push(`${message.fps.toFixed(1)} fps`, `labeling ${Math.round(message.latency_ms)} ms`);
  if (message.message) facts.push(message.message);
  show("camera-state", facts.join(" · "));
}

live.addEventListener("live-message", onLiveMessage);
live.addEventListener("live-open", () => {
  for (const entry of outbox.values()) entry.sentMs = -Infinity; // resend after a reconnect
  flush();
});
document.getElementById("protocol-begin").addEventListener("click", begin);
document.getElementById("protocol-pause").addEventListener("click", pause);
document.getElementById("protocol-resume").addEventListener("click", resume);
document.getElementById("protocol-redo").addEventListener("click", redo);
