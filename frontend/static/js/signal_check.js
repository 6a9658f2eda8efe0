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
