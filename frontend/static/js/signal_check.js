// The recording page's signal check: per channel noise floor, mains hum and
// saturation from the live "quality" lists (recorder/quality.py), with advice for
// bad channels; bad electrodes are also marked on the band placement drawing.

// At rest, healthy forearm EMG sits at a few µV; much more means the electrode picks
// up noise (or the hand is not relaxed).
const NOISE_FLOOR_HIGH_UV = 50;

function percent(x) {
  return `${(100 * x).toFixed(1)} %`;
}

function advice(quality) {
  if (quality.problem) return quality.problem;
  if (quality.noise_floor_uv > NOISE_FLOOR_HIGH_UV) {
    return "high noise floor: relax the hand; if it stays, moisten the skin under this electrode";
  }
  return "";
}

/** Fill the #signal-check table; returns the number of channels needing attention. */
export function showSignalCheck(channels) {
  const body = document.querySelector("#signal-check tbody");
  if (!body) return 0;
  body.innerHTML = "";
  let bad = 0;
  channels.forEach((quality, c) => {
    const text = advice(quality);
    if (text) bad += 1;
    const row = body.insertRow();
    row.className = text ? "bad" : "ok";
    [`ch${c + 1}`, quality.noise_floor_uv.toFixed(1), percent(quality.line_noise_ratio),
     percent(quality.clipped_fraction), text || "good"].forEach((cell) => {
      row.insertCell().textContent = cell;
    });
    document.getElementById(`electrode-${c + 1}`)?.classList.toggle("bad", Boolean(text));
  });
  return bad;
}

// ------------------------------------------------------------ electrode contact
// MindRove only: "Check electrode contact" asks the agent (over the live socket,
// "contact.check") to put the band in impedance mode for a few seconds; the answer
// is a "live.contact" message with one impedance per electrode pair (or a message
// saying why there is none). This module wires itself up when the page has the
// button (protocol_runner.html), since protocol_runner.js imports it.

// No MindRove threshold is published (and the SDK does not state the unit; values are
// taken to be kΩ). Dry electrodes on skin typically read tens to hundreds of kΩ, so
// these are conservative defaults: below GOOD is fine, above POOR needs attention.
const CONTACT_GOOD_MAX_KOHM = 100;
const CONTACT_POOR_MIN_KOHM = 500;
// A check takes about 5 s on the band; past this the agent is not answering.
const CONTACT_TIMEOUT_MS = 30000;

/** [level, advice] for one pair's impedance (null: no reading). */
export function contactAdvice(kohm) {
  if (kohm === null || kohm === undefined) {
    return ["poor", "no reading: check that both electrodes of this pair touch the skin"];
  }
  if (kohm > CONTACT_POOR_MIN_KOHM) {
    return ["poor", "poor contact: tighten the band or moisten the skin under these electrodes"];
  }
  if (kohm > CONTACT_GOOD_MAX_KOHM) {
    return ["fair", "usable; moistening the skin under these electrodes would lower it"];
  }
  return ["good", "good"];
}

/** Fill #contact-table from a live.contact message; returns the pairs needing attention. */
export function showContact(message) {
  const table = document.getElementById("contact-table");
  const summary = document.getElementById("contact-summary");
  if (!table || !summary) return 0;
  const body = table.querySelector("tbody");
  body.innerHTML = "";
  if (!message.pairs.length) {
    table.hidden = true;
    summary.textContent = `no measurement: ${message.message || "the agent gave no reason"}`;
    return 0;
  }
  let poor = 0;
  message.pairs.forEach((pair, index) => {
    const kohm = message.resistance_kohm[index];
    const [level, text] = contactAdvice(kohm);
    if (level === "poor") poor += 1;
    const row = body.insertRow();
    row.className = level === "poor" ? "bad" : "ok";
    [pair, kohm === null ? "—" : kohm.toFixed(0), text].forEach((cell) => {
      row.insertCell().textContent = cell;
    });
  });
  table.hidden = false;
  document.getElementById("contact-thresholds").hidden = false;
  summary.textContent = poor ? `${poor} pair(s) with poor contact: see the advice, then check again`
                             : "contact looks good on every pair";
  return poor;
}

function wireContactCheck() {
  const button = document.getElementById("contact-check-button");
  const live = document.getElementById("live");
  if (!button || !live) return;
  const summary = document.getElementById("contact-summary");
  let timer = null;
  const done = () => {
    clearTimeout(timer);
    button.disabled = false;
  };
  button.addEventListener("click", () => {
    if (!window.liveRecording?.send({ type: "contact.check" })) {
      summary.textContent = "not connected to the server yet: try again in a moment";
      return;
    }
    button.disabled = true;
    summary.textContent = "measuring: keep still, the EMG pauses for about 5 s…";
    timer = setTimeout(() => {
      done();
      summary.textContent = "no answer from the agent: is it still recording?";
    }, CONTACT_TIMEOUT_MS);
  });
  live.addEventListener("live-message", (event) => {
    if (event.detail.type !== "live.contact") return;
    done();
    showContact(event.detail);
  });
}

if (typeof document !== "undefined") wireContactCheck();
