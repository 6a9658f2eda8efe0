// Session review page: a scrubber over the whole session, EMG traces with the
// protocol's steps shaded, invalid labels marked, the label hand at the cursor,
// play/pause at real speed, and per-step statistics.
//
// A 20-minute session is never loaded whole: the overview strip asks for one
// envelope of the session at its pixel width, the traces for the seconds around the
// cursor at theirs, and the hand for label frames in 10 s chunks, fetched as the
// cursor reaches them (see webapp/recordings/review.py).
//
// When the server has the user's MANO files, the hand is MANO's mesh: the overview
// brings its triangles once, and each label chunk each frame's vertices (fewer
// frames a chunk, as a mesh frame is 37 times a joints frame). Frames without
// vertices, and servers without MANO, draw the stylized hand from the joints.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { HandView } from "./hand_renderer.js";

const TRACE_WINDOW_S = 10; // seconds of EMG in the traces
const TRACE_MARGIN_S = 2; // move the traces when the cursor is this close to an edge
const LABEL_CHUNK_S = 10; // label frames are fetched in chunks this long
const LABEL_CHUNKS_KEPT = 30; // chunks kept in memory (~5 minutes of labels)
const MESH_FRAMES_PER_CHUNK = 300; // 30 frames/s of mesh (~4 MB a chunk)
const PREFETCH_S = 3; // fetch the next chunk this long before the cursor reaches it
const FETCH_DELAY_MS = 80; // while dragging, wait this long before fetching traces
const LABEL_COLOR = 0xe07b39;
const INVALID_COLOR = 0x9aa3b2;
const STEP_COLORS = ["rgba(47,111,237,0.10)", "rgba(46,139,87,0.12)", "rgba(224,123,57,0.12)",
                     "rgba(150,90,200,0.11)", "rgba(200,170,40,0.14)"];
const INVALID_FILL = "rgba(201,59,59,0.75)";

const root = document.getElementById("review");
const scrubber = document.getElementById("scrubber");
const playButton = document.getElementById("play");
// the page's state; tests (and the curious) read it as window.sessionReview
const review = {
  overview: null,
  ready: false, // the overview, charts and controls are in place
  timeS: 0,
  playing: false,
  lastTickMs: null,
  traceStartS: null,
  traceRequest: 0,
  traceTimer: null,
  labelChunks: new Map(), // chunk index -> {time_s, label_valid, joints_mm, vertices_mm?} or "loading"
  meshFaces: null, // MANO's triangles (flat vertex indexes) when the server draws meshes
  shownFrameTimeS: null,
  framesDrawn: 0,
  needsDraw: true,
  seek,
  play,
  pause,
};
window.sessionReview = review;

const view = new HandView(document.getElementById("viewer"), { preserveDrawingBuffer: true });
const hand = view.addHand({ color: LABEL_COLOR });
hand.visible = false;

function showMessage(text) {
  const element = document.getElementById("message");
  element.textContent = text || "";
  element.hidden = !text;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${url}: HTTP ${response.status}`);
  return body;
}

function rangeUrl(base, startS, endS, extra) {
  const query = new URLSearchParams({ start: startS.toFixed(3), end: endS.toFixed(3), ...extra });
  return `${base}?${query}`;
}

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

// ------------------------------------------------------------------ steps

function stepAt(timeS) {
  return review.overview.steps.findIndex((s) => s.start_s <= timeS && timeS < s.end_s);
}

// Shades the steps (and marks invalid labels along the bottom) of a chart's x range.
function drawSteps(u, withNames) {
  const { ctx } = u;
  const { top, height } = u.bbox;
  const [fromS, toS] = [u.scales.x.min, u.scales.x.max];
  ctx.save();
  review.overview.steps.forEach((step, index) => {
    if (step.end_s < fromS || step.start_s > toS) return;
    const left = u.valToPos(Math.max(step.start_s, fromS), "x", true);
    const right = u.valToPos(Math.min(step.end_s, toS), "x", true);
    ctx.fillStyle = STEP_COLORS[index % STEP_COLORS.length];
    ctx.fillRect(left, top, right - left, height);
    if (withNames && right - left > 30) {
      ctx.fillStyle = "#5b6475";
      ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.fillText(step.name, left + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
    }
  });
  const markHeight = 5 * devicePixelRatio;
  ctx.fillStyle = INVALID_FILL;
  for (const [startS, endS] of review.overview.invalid_label_spans) {
    if (endS < fromS || startS > toS) continue;
    const left = u.valToPos(Math.max(startS, fromS), "x", true);
    const right = u.valToPos(Math.min(endS, toS), "x", true);
    ctx.fillRect(left, top + height - markHeight, Math.max(right - left, devicePixelRatio), markHeight);
  }
  ctx.restore();
}

function fillStepTable() {
  const body = document.querySelector("#steps tbody");
  const stats = review.overview.step_stats;
  body.innerHTML = "";
  stats.forEach((row, index) => {
    const tr = document.createElement("tr");
    const isWhole = row.start_s === null;
    const valid = row.label_valid_fraction;
    const rms = row.emg_rms_uv.filter((v) => v !== null);
    const cells = [
      row.name,
      isWhole ? "" : row.start_s.toFixed(2),
      isWhole ? review.overview.duration_s.toFixed(1) : (row.end_s - row.start_s).toFixed(2),
      String(row.label_frames),
      valid === null ? "—" : `${(100 * valid).toFixed(1)} %`,
      rms.length ? (rms.reduce((a, b) => a + b, 0) / rms.length).toFixed(1) : "—",
    ];
    cells.forEach((text, column) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (column > 0) td.className = "number";
      tr.appendChild(td);
    });
    tr.title = `RMS per channel (µV): ${row.emg_rms_uv.join(", ")}`;
    if (!isWhole) {
      tr.dataset.step = String(index);
      tr.addEventListener("click", () => seek(row.start_s));
    } else {
      tr.className = "muted";
    }
    body.appendChild(tr);
  });
}

// ------------------------------------------------------------------ charts

function cursorLine(container) {
  const line = document.createElement("div");
  line.className = "review-cursor";
  container.appendChild(line);
  return line;
}

function placeCursor(line, plot, timeS, container) {
  const plotLeft = plot.over.getBoundingClientRect().left - container.getBoundingClientRect().left;
  const x = plot.valToPos(timeS, "x");
  line.style.display = x >= 0 && x <= plot.over.clientWidth ? "block" : "none";
  line.style.left = `${plotLeft + x}px`;
}

// The whole session: each bin's largest |EMG| over all channels.
async function makeOverview() {
  const container = document.getElementById("overview");
  const width = container.clientWidth || 1000;
  const { duration_s: durationS } = review.overview;
  const envelope = await getJson(rangeUrl(root.dataset.emgUrl, 0, durationS, { bins: Math.min(width, 4000) }));
  const activity = envelope.time_s.map((_, i) => {
    let peak = null;
    envelope.min.forEach((low, c) => {
      const high = envelope.max[c][i];
      if (low[i] === null || high === null) return;
      peak = Math.max(peak ?? 0, Math.abs(low[i]), Math.abs(high));
    });
    return peak;
  });
  const plot = new uPlot({
    width, height: 150,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: [0, durationS] } },
    axes: [{ label: "seconds", size: 30, labelSize: 16 }, { size: 50, label: "peak |µV|", labelSize: 14 }],
    series: [{}, { stroke: "#46546b", fill: "rgba(70,84,107,0.18)", width: 1 }],
    hooks: { drawClear: [(u) => drawSteps(u, true)] },
  }, [envelope.time_s, activity], container);
  plot.over.addEventListener("click", (event) => seek(plot.posToVal(event.offsetX, "x")));
  review.overviewPlot = plot;
  review.overviewCursor = cursorLine(container);
}

function makeTracePlots(channels) {
  const container = document.getElementById("traces");
  container.innerHTML = "";
  const width = container.clientWidth || 500;
  review.tracePlots = channels.map((name, c) => {
    const isLast = c === channels.length - 1;
    const color = `hsl(${(c * 45) % 360} 65% 45%)`;
    return new uPlot({
      width, height: isLast ? 58 + 30 + 16 : 58, // the last also carries the time axis
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { range: symmetricRange } },
      axes: [{ show: isLast, label: isLast ? "seconds" : undefined, size: 30, labelSize: 16 },
             { size: 52, label: name, labelSize: 14, splits: (u) => [-u.scales.y.max, 0, u.scales.y.max].map(Math.round) }],
      series: [{}, { stroke: color, width: 1 }, { stroke: color, width: 1 }],
      bands: [{ series: [2, 1], fill: color.replace(")", " / 0.35)") }],
      hooks: { drawClear: [(u) => drawSteps(u, false)] },
    }, [[], [], []], container);
  });
  review.traceCursor = cursorLine(container);
}

// EMG is centred on zero: ±peak makes every channel's scale read at a glance.
function symmetricRange(u, min, max) {
  const peak = Math.max(Math.abs(min ?? 0), Math.abs(max ?? 0), 10);
  return [-peak, peak];
}

// Moves the traces' window when the cursor nears its edge, then fetches it.
function followWithTraces(timeS) {
  const durationS = review.overview.duration_s;
  const windowS = Math.min(TRACE_WINDOW_S, durationS);
  const start = review.traceStartS;
  if (start !== null) {
    const end = start + windowS;
    const nearLeft = start > 0 && timeS < start + TRACE_MARGIN_S;
    const nearRight = end < durationS && timeS > end - TRACE_MARGIN_S;
    if (timeS >= start && timeS <= end && !nearLeft && !nearRight) return;
  }
  // playing runs forward: put the cursor near the left so the window lasts longer
  const lead = review.playing ? TRACE_MARGIN_S : windowS / 2;
  review.traceStartS = clamp(timeS - lead, 0, Math.max(durationS - windowS, 0));
  const endS = review.traceStartS + windowS;
  review.tracePlots.forEach((plot) => plot.setScale("x", { min: review.traceStartS, max: endS }));
  clearTimeout(review.traceTimer);
  review.traceTimer = setTimeout(() => loadTraces(review.traceStartS, endS), review.playing ? 0 : FETCH_DELAY_MS);
}

async function loadTraces(startS, endS) {
  const request = ++review.traceRequest;
  const bins = Math.min(review.tracePlots[0].over.clientWidth || 500, 4000);
  const info = document.getElementById("trace-info");
  try {
    const envelope = await getJson(rangeUrl(root.dataset.emgUrl, startS, endS, { bins }));
    if (request !== review.traceRequest) return; // the cursor has moved on
    review.tracePlots.forEach((plot, c) => {
      plot.setData([envelope.time_s, envelope.min[c], envelope.max[c]], false);
      plot.setScale("x", { min: startS, max: endS });
    });
    info.textContent = `${startS.toFixed(1)}–${endS.toFixed(1)} s · ${envelope.tier}`;
    root.dataset.tracesLoaded = String(Number(root.dataset.tracesLoaded || 0) + 1);
    review.needsDraw = true;
  } catch (error) {
    showMessage(`EMG could not be loaded: ${error.message}`);
  }
}

// ------------------------------------------------------------------ labels and hand

function chunkIndex(timeS) {
  return Math.floor(timeS / LABEL_CHUNK_S);
}

async function loadLabelChunk(index) {
  if (review.labelChunks.has(index) || index < 0 || index * LABEL_CHUNK_S > review.overview.duration_s) return;
  review.labelChunks.set(index, "loading");
  try {
    const startS = index * LABEL_CHUNK_S;
    const query = review.meshFaces ? { max_frames: MESH_FRAMES_PER_CHUNK, mesh: 1 } : { max_frames: 2000 };
    const url = rangeUrl(root.dataset.labelsUrl, startS, startS + LABEL_CHUNK_S, query);
    review.labelChunks.set(index, await getJson(url));
    while (review.labelChunks.size > LABEL_CHUNKS_KEPT) {
      review.labelChunks.delete(review.labelChunks.keys().next().value);
    }
    review.needsDraw = true;
  } catch (error) {
    review.labelChunks.delete(index);
    showMessage(`Labels could not be loaded: ${error.message}`);
  }
}

// The last label frame at or before timeS (the one on screen at that moment).
function labelFrameAt(timeS) {
  let chunk = review.labelChunks.get(chunkIndex(timeS));
  let frame = chunk?.time_s ? lastAtOrBefore(chunk.time_s, timeS) : -1;
  if (chunk?.time_s && frame < 0) {
    // before the chunk's first frame: the previous chunk's last one, if loaded
    chunk = review.labelChunks.get(chunkIndex(timeS) - 1);
    frame = chunk?.time_s ? chunk.time_s.length - 1 : -1;
  }
  if (!chunk?.time_s || frame < 0) return null;
  return {
    timeS: chunk.time_s[frame],
    valid: chunk.label_valid[frame],
    joints: chunk.joints_mm[frame],
    vertices: chunk.vertices_mm?.[frame] ?? null, // null: no mesh for this frame
  };
}

function lastAtOrBefore(times, timeS) {
  let low = 0;
  let high = times.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (times[middle] <= timeS) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

function showHand(timeS) {
  if (!review.overview.has_labels) return false;
  loadLabelChunk(chunkIndex(timeS));
  if (review.playing && timeS % LABEL_CHUNK_S > LABEL_CHUNK_S - PREFETCH_S) loadLabelChunk(chunkIndex(timeS) + 1);
  const frame = labelFrameAt(timeS);
  if (!frame || frame.timeS === review.shownFrameTimeS) return false;
  review.shownFrameTimeS = frame.timeS;
  root.dataset.frameTimeS = frame.timeS.toFixed(3);
  const label = document.getElementById("current-label");
  label.textContent = frame.valid ? "valid" : "invalid";
  label.className = `status ${frame.valid ? "ok" : "held"}`;
  if (frame.joints.some((v) => v === null)) {
    hand.visible = false; // the fit has no joints for this frame: show none
    return true;
  }
  hand.setStyle({ color: frame.valid ? LABEL_COLOR : INVALID_COLOR, opacity: frame.valid ? 1 : 0.55 });
  hand.setJoints(frame.joints);
  if (frame.vertices) {
    hand.setMesh(frame.vertices, hand.mesh ? null : review.meshFaces); // faces once
  } else {
    hand.clearMesh();
  }
  root.dataset.handDrawn = frame.vertices ? "mesh" : "joints";
  hand.visible = true;
  review.framesDrawn += 1;
  root.dataset.framesDrawn = String(review.framesDrawn);
  return true;
}

// ------------------------------------------------------------------ time

function seek(timeS) {
  review.timeS = clamp(Number(timeS) || 0, 0, review.overview?.duration_s ?? 0);
  review.lastTickMs = null;
  review.needsDraw = true;
}

function play() {
  if (review.timeS >= review.overview.duration_s) seek(0);
  review.playing = true;
  review.lastTickMs = null;
  playButton.textContent = "❚❚ Pause";
}

function pause() {
  review.playing = false;
  playButton.textContent = "▶ Play";
}

// Called every animation frame: advances the clock when playing (real time, from
// the frame's own timestamp) and redraws what the time moved.
function beforeRender(nowMs) {
  if (!review.ready) return false;
  if (review.playing) {
    if (review.lastTickMs !== null) review.timeS += (nowMs - review.lastTickMs) / 1000;
    review.lastTickMs = nowMs;
    if (review.timeS >= review.overview.duration_s) {
      review.timeS = review.overview.duration_s;
      pause();
    }
    review.needsDraw = true;
  }
  if (!review.needsDraw) return false;
  review.needsDraw = false;
  return showTime(review.timeS);
}

function showTime(timeS) {
  root.dataset.timeS = timeS.toFixed(3);
  document.getElementById("clock").textContent = `${timeS.toFixed(2)} s / ${review.overview.duration_s.toFixed(1)} s`;
  if (document.activeElement !== scrubber) scrubber.value = String(timeS);
  const step = stepAt(timeS);
  document.getElementById("current-step").textContent = step >= 0 ? review.overview.steps[step].name : "—";
  document.querySelectorAll("#steps tr.current").forEach((row) => row.classList.remove("current"));
  document.querySelector(`#steps tr[data-step="${step}"]`)?.classList.add("current");
  placeCursor(review.overviewCursor, review.overviewPlot, timeS, document.getElementById("overview"));
  followWithTraces(timeS);
  placeCursor(review.traceCursor, review.tracePlots[0], timeS, document.getElementById("traces"));
  return showHand(timeS);
}

// ------------------------------------------------------------------ start

async function start() {
  try {
    review.overview = await getJson(`${root.dataset.overviewUrl}?mesh=1`);
  } catch (error) {
    showMessage(`This session cannot be reviewed: ${error.message}`);
    return;
  }
  const { overview } = review;
  scrubber.max = String(overview.duration_s);
  const labelsNote = document.getElementById("labels-note");
  if (overview.mesh_faces) {
    review.meshFaces = overview.mesh_faces.flat();
    labelsNote.textContent = "labels at the cursor, drawn with the MANO mesh";
  } else if (overview.mesh_note) {
    labelsNote.title = overview.mesh_note; // why the hand is stylized
  }
  if (overview.labels_note) labelsNote.textContent = overview.labels_note;
  fillStepTable();
  makeTracePlots(overview.channels);
  await makeOverview();
  scrubber.addEventListener("input", () => seek(scrubber.value));
  playButton.addEventListener("click", () => (review.playing ? pause() : play()));
  document.addEventListener("keydown", (event) => {
    if (event.code !== "Space" || event.target.closest("input, select, textarea")) return;
    event.preventDefault();
    review.playing ? pause() : play();
  });
  playButton.disabled = false;
  review.needsDraw = true;
  review.ready = true;
  root.dataset.ready = "true";
}

view.start(beforeRender);
start();
