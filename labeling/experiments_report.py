"""Markdown tables and plots for `labeling.experiments` results."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from labeling.kinematics import MEDIAPIPE_JOINT_NAMES

SEED_RESIDUAL_MM = 9.71  # the seed's headline "accuracy": an IK fit residual
FINGERS = {
    "wrist": [0],
    "thumb": [1, 2, 3, 4],
    "index": [5, 6, 7, 8],
    "middle": [9, 10, 11, 12],
    "ring": [13, 14, 15, 16],
    "pinky": [17, 18, 19, 20],
}
FINGERTIPS = [4, 8, 12, 16, 20]
FINGER_BASES = [1, 5, 9, 13, 17]  # thumb CMC and the four MCPs
PER_JOINT_PLOT = "img/ik_per_joint_error.png"
RESIDUAL_PLOT = "img/ik_residual_vs_true_error.png"
SEED_TABLES = {
    "ablation": "baseline 9.71 / 7.50 mm; no bone direction 12.48; no temporal 9.66; "
    "no regularization 8.49; position only 7.04",
    "alignment": "Umeyama scaled 9.71 / 7.50 mm (scale 0.981 ± 0.121); Umeyama "
    "rigid 10.31 / 7.91; Kabsch 10.31 / 7.91",
    "optimizer": "Adam 9.71 / 7.50 mm, 56.7 ms, 99.7 % converged; SGD 26.23 / "
    "23.17, 55.0 ms, 92.6 %; L-BFGS 10.82 / 7.80, 38.8 ms, 99.3 %",
}


def write_report(out_dir: Path, results: dict) -> None:
    """OUT/ik_experiments.md and the two PNG plots in OUT/img/."""
    (out_dir / "img").mkdir(parents=True, exist_ok=True)
    plot_per_joint(out_dir / PER_JOINT_PLOT, results)
    plot_residual_vs_truth(out_dir / RESIDUAL_PLOT, results)
    (out_dir / "ik_experiments.md").write_text(markdown(results))


def _mm(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "n/a"


def _row_cells(row: dict) -> list[str]:
    return [
        _mm(row["residual_mean"]),
        _mm(row["residual_median"]),
        _mm(row["true_mean"]),
        _mm(row["true_median"]),
        _mm(row["true_wrist_mean"]),
        f"{row['valid_pct']:.1f}",
        f"{row['ms_per_frame']:.2f}",
        _mm(row["real_residual_mean"]),
    ]


BASE_HEADER = [
    "residual mean",
    "residual median",
    "true mean",
    "true median",
    "true, wrist-rel. no align",
    "valid %",
    "batched ms/frame",
    "real residual (3 files)",
]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _raw_cells(raw: dict, width: int) -> list[str]:
    cells = ["—", "—", _mm(raw["true_mean"]), _mm(raw["true_median"])]
    cells.append(_mm(raw["true_wrist_mean"]))
    return ["**raw landmarks, no IK**"] + cells + ["—"] * (width - 6)


def results_table(table: dict, raw: dict, extra=None) -> str:
    """A results table: one row per configuration plus the raw-landmark row.
    `extra`: (column name, row -> cell) appended to every row."""
    header = ["configuration"] + BASE_HEADER
    rows = []
    for name, row in table.items():
        cells = [name] + _row_cells(row)
        if extra:
            cells.append(extra[1](name, row))
        rows.append(cells)
    rows.append(_raw_cells(raw, len(header)) + (["—"] if extra else []))
    return _table(header + ([extra[0]] if extra else []), rows)


def streaming_table(rows: dict, raw: dict) -> str:
    header = ["streaming run", "residual mean", "residual median", "true mean"]
    header += ["true median", "true, wrist-rel.", "ms/frame p50", "ms/frame p95"]
    body = [
        [name]
        + [_mm(row[key]) for key in ("residual_mean", "residual_median")]
        + [_mm(row[key]) for key in ("true_mean", "true_median", "true_wrist_mean")]
        + [f"{row['ms_per_frame']:.2f}", f"{row['ms_p95']:.2f}"]
        for name, row in rows.items()
    ]
    return _table(header, body)


def per_joint_rows(raw: dict, default: dict) -> list[list[str]]:
    return [
        [
            name,
            _mm(raw["per_joint_true"][joint]),
            _mm(default["per_joint_true"][joint]),
            _mm(default["per_joint_residual"][joint]),
            _mm(default["real_per_joint_residual"][joint]),
        ]
        for joint, name in enumerate(MEDIAPIPE_JOINT_NAMES)
    ]


def group_rows(raw: dict, default: dict) -> list[list[str]]:
    groups = dict(FINGERS)
    groups["fingertips (5)"] = FINGERTIPS
    groups["finger bases (CMC/MCP, 5)"] = FINGER_BASES
    keys = ("per_joint_true", "per_joint_residual", "real_per_joint_residual")
    return [
        [name, _mm(raw["per_joint_true"][joints].mean())]
        + [_mm(default[key][joints].mean()) for key in keys]
        for name, joints in groups.items()
    ]


def tip_ratio(values: np.ndarray) -> float:
    """How much larger the fingertips' mean error is than the bases' (%)."""
    return 100.0 * (values[FINGERTIPS].mean() / values[FINGER_BASES].mean() - 1.0)


def worst_joints(values: np.ndarray, count: int = 5) -> str:
    order = np.argsort(values)[::-1][:count]
    return ", ".join(f"{MEDIAPIPE_JOINT_NAMES[j]} {values[j]:.2f}" for j in order)


def real_table(results: dict) -> str:
    default = results["ablation"]["full + joint limits (our default)"]
    mirrored = results["real_mirrored"]["real_residuals"]
    long = results["real_long"]["real_residuals"]
    rows = [
        [name, handedness, f"{score:.2f}"]
        + [_mm(default["real_residuals"][name]), _mm(long[name]), _mm(mirrored[name])]
        for name, handedness, score in results["real_frames"]
    ]
    header = ["file", "MediaPipe handedness", "score", "residual, that hand"]
    header += ["same, 600 iterations", "residual, left-hand model"]
    return _table(header, rows)


def machine_line(results: dict) -> str:
    import os

    before, after = results["load_average"]
    busy = ""
    if max(before, after) > 1.5:
        busy = ": other work shared the 2 cores, so ms/frame are upper bounds"
    return (
        f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), "
        f"no GPU, Python {platform.python_version()}; whole run "
        f"{results['seconds']:.0f} s. 1-minute load average {before:.1f} before and "
        f"{after:.1f} after the run{busy}"
    )


def default_row(results: dict) -> dict:
    return results["ablation"]["full + joint limits (our default)"]


def markdown(results: dict) -> str:
    return (
        "\n\n".join(
            [
                intro(results),
                headline(results),
                ablation_section(results),
                alignment_section(results),
                optimizer_section(results),
                streaming_section(results),
                per_joint_section(results),
                real_section(results),
            ]
        )
        + "\n"
    )


def intro(results: dict) -> str:
    frames, sessions = results["frames"], results["sessions"]
    return f"""# IK validation: the seed's Tables I–III and per-joint analysis, redone

Command: `python -m labeling experiments --out docs --frames {frames} --seed \
{results["seed"]}`
Machine: {machine_line(results)}.

Data: (a) {sessions} simulated sessions (`recorder.simulation`, seeds \
{results["seed"]}..{results["seed"] + sessions - 1}) of {frames} camera frames \
(30 fps) each; landmarks carry independent gaussian noise of 3 mm across the image \
plane and 8 mm along depth, and ~3 % of frames fail detection (NaN, excluded from \
every mean). (b) The three real MediaPipe landmark files in \
`shared/data/mediapipe_hands` (one frame each, no ground truth).

What the numbers mean (all mm, mean over joints then frames):
- **residual**: fitted model joints vs the landmarks aligned onto them (the IK's own \
`ik_error_mm`). This is what the seed calls "9.71 mm accuracy". It measures how \
well the model agrees with MediaPipe, not how right the label is: a fit that copies \
the landmark noise has a small residual and a large true error.
- **true**: fitted joints vs the simulator's true joints after a similarity \
(Procrustes) alignment onto the truth. **true, wrist-rel. no align**: both wrists at \
the origin, no alignment at all (rotation and scale errors count).
- **raw landmarks, no IK**: the landmarks scored against the same truth with the \
same alignment. IK only adds value as a label source where *true* is below this.
- **valid %**: frames with `label_valid` (score > 0.7 and residual < 25 mm); failed \
detections count as invalid. Stands in for the seed's "convergence".
- **real residual**: mean residual of per-frame fits of the three real files \
(`fit_sequence` on one frame, same config; no smoothness possible). Each file's \
bone lengths are fitted on the *other two* files (`labeling.bone_lengths`), so one \
frame cannot absorb its own residual into its bones.
- Simulated sessions fit their bone lengths on their own frames first (256 \
frames, 3 rounds); the simulated hands have the average bones, so this can only \
add noise there.
- Simulated sessions are fitted in **batched** mode (`fit_sequence`, 60 iterations, \
{sessions} sessions back to back); `batched ms/frame` is wall time over frames on \
2 threads. The live **streaming** mode is in its own table below."""


def headline(results: dict) -> str:
    default, raw = default_row(results), results["raw"]
    gain = 100.0 * (1.0 - default["true_mean"] / raw["true_mean"])
    beat = "below" if default["residual_mean"] < SEED_RESIDUAL_MM else "above"
    return f"""## Headline

Default config (full loss + joint limits, Umeyama with scale, Adam): residual \
**{default["residual_mean"]:.2f} mm** on simulated data ({beat} the seed's \
{SEED_RESIDUAL_MM} mm residual) and **{default["real_residual_mean"]:.2f} mm** on the \
three real frames; true error **{default["true_mean"]:.2f} mm** against \
**{raw["true_mean"]:.2f} mm** for the raw landmarks ({gain:.0f} % less). The seed \
never measured a true error; its 9.71 mm is a residual, so "9.71 mm accuracy" is not \
a claim this repo can repeat. Our residual is also not comparable to it one to one: \
the simulated noise level is our choice, and real MediaPipe noise on video is \
unknown here (three still frames are all the real data we have)."""


def ablation_section(results: dict) -> str:
    table = results_table(results["ablation"], results["raw"])
    rows = results["ablation"]
    position = rows["position only"]
    default = default_row(results)
    return f"""## Table I: loss-term ablation (terms added one at a time)

{table}

Seed (residual mean / median): {SEED_TABLES["ablation"]}.

Reading: position-only has residual {position["residual_mean"]:.2f} mm and true \
error {position["true_mean"]:.2f} mm; the default {default["residual_mean"]:.2f} and \
{default["true_mean"]:.2f} mm. Every term that pulls the fit away from the landmarks \
raises the residual, which is why the seed found "position only" best; whether it \
helps the *label* shows only in the true column. The seed's "no temporal" row \
cannot be compared directly: our batched smoothness couples whole sequences.

{direction_finding(rows, results["raw"]["true_mean"])}"""


def direction_finding(rows: dict, raw_mm: float) -> str:
    position, direction = rows["position only"], rows["+ bone direction"]
    smooth = rows["+ smoothness"]
    verdict = "raises" if direction["true_mean"] > position["true_mean"] else "lowers"
    return (
        f"Bone direction on its own {verdict} the true error "
        f"({position['true_mean']:.2f} → {direction['true_mean']:.2f} mm; raw "
        f"landmarks {raw_mm:.2f} mm), likely because the cosine term weighs "
        "every bone alike, so the noisy directions of short distal bones pull hard. "
        "The seed's claim that it is essential rests on the residual alone. "
        "Smoothness is what "
        f"turns it into a gain ({smooth['true_mean']:.2f} mm)."
    )


def alignment_section(results: dict) -> str:
    scale = ("avg scale (landmarks → fit)", _scale_cell)
    table = results_table(results["alignment"], results["raw"], scale)
    return f"""## Table II: alignment method (default loss)

{table}

Seed: {SEED_TABLES["alignment"]}.

Umeyama rigid and Kabsch solve the same least-squares problem, so equal rows are \
expected (as in the seed). The simulator draws landmarks at the true hand size, so \
scale estimation has no drift to absorb here; a scale near 1.0 is the check, and \
any gain from scaling is fitting noise. On the real files the scale does matter: \
MediaPipe's hand size need not match the model's."""


def _scale_cell(name: str, row: dict) -> str:
    return f"{row['scale_mean']:.3f} ± {row['scale_sd']:.3f}"


def optimizer_section(results: dict) -> str:
    streaming = results["streaming"]

    def stream_cell(name: str, row: dict) -> str:
        stream = streaming.get(f"{name}, torch steps")
        return f"{stream['ms_per_frame']:.2f}" if stream else "—"

    extra = ("streaming ms/frame p50 (torch steps, 1 thread)", stream_cell)
    table = results_table(results["optimizer"], results["raw"], extra)
    return f"""## Table III: optimizer (default loss and alignment)

{table}

Seed: {SEED_TABLES["optimizer"]}.

Batched: all frames of a session in one problem, 60 iterations (for L-BFGS, 60 \
iterations of one `step` with strong-Wolfe line search, so more function \
evaluations). The seed's ms/frame are per-frame fits; ours batched are amortised \
over a session, so only the streaming column is a per-frame latency."""


def streaming_section(results: dict) -> str:
    table = streaming_table(results["streaming"], results["raw"])
    return f"""## Streaming (live) mode

{table}

Warm-started from the previous frame, 15 iterations per frame (150 on the cold \
first frame, left out of the timings), 1 thread. The default steps on a per-frame \
linearisation of the model (`streaming_linearized`) and is run on every session; the \
optimizer rows use full torch steps on the first \
{min(results["frames"], 300)} frames of the first session."""


def per_joint_section(results: dict) -> str:
    raw, default = results["raw"], default_row(results)
    header = ["joint", "raw landmarks vs truth", "IK true error"]
    header += ["IK residual (sim)", "IK residual (real, 3 files)"]
    joints = _table(header, per_joint_rows(raw, default))
    groups = _table(["group"] + header[1:], group_rows(raw, default))
    true_ratio = tip_ratio(default["per_joint_true"])
    residual_ratio = tip_ratio(default["per_joint_residual"])
    real_ratio = tip_ratio(default["real_per_joint_residual"])
    return f"""## Per-joint error (Section V-D), default config

![per-joint error]({PER_JOINT_PLOT})

{groups}

Fingertips vs bases: true error {true_ratio:+.0f} %, residual {residual_ratio:+.0f} \
% (sim), residual {real_ratio:+.0f} % (real). Seed: fingertips 40–80 % higher; worst \
joints thumb tip 14.13, wrist 13.13, index tip 11.85, thumb IP 11.41, pinky tip \
11.32 mm. Ours, worst true error (sim): {worst_joints(default["per_joint_true"])}. \
Worst residual (real): {worst_joints(default["real_per_joint_residual"])}.

Caveat: the simulator's noise is the same for every joint, so it cannot reproduce \
depth ambiguity growing toward the fingertips; a tip/base difference in the *true* \
column comes from the IK (errors accumulate along the kinematic chain), not from \
the camera.

{joints}"""


def real_section(results: dict) -> str:
    return f"""## Real MediaPipe files (residual only)

{real_table(results)}

One frame each, fitted with the default config (60 iterations from the flat hand); \
the 600-iteration column checks whether that budget converges on a lone frame. \
The last column refits with the left-hand model: MediaPipe labels handedness for \
mirrored (selfie) input, so a lower residual there would say the label is flipped.

![residual vs true error]({RESIDUAL_PLOT})"""


def plot_per_joint(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw, default = results["raw"], default_row(results)
    series = {
        "raw landmarks vs truth (sim)": raw["per_joint_true"],
        "IK true error (sim)": default["per_joint_true"],
        "IK residual (sim)": default["per_joint_residual"],
        "IK residual (real, 3 frames)": default["real_per_joint_residual"],
    }
    positions = np.arange(len(MEDIAPIPE_JOINT_NAMES))
    figure, axes = plt.subplots(figsize=(13, 4.8))
    width = 0.8 / len(series)
    for index, (label, values) in enumerate(series.items()):
        axes.bar(positions + (index - 1.5) * width, values, width, label=label)
    axes.set_xticks(positions, MEDIAPIPE_JOINT_NAMES, rotation=60, ha="right")
    axes.set_ylabel("mean error (mm)")
    axes.set_title("Per-joint IK error, default config")
    axes.set_ylim(0, 1.3 * max(values.max() for values in series.values()))
    axes.legend(loc="upper center", ncol=4)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_residual_vs_truth(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {}
    for table in ("ablation", "alignment", "optimizer"):
        # the "(default)" rows repeat Table I's last row
        rows.update(
            (name, row)
            for name, row in results[table].items()
            if "(default)" not in name
        )
    names = list(rows)
    positions = np.arange(len(names))
    figure, axes = plt.subplots(figsize=(12, 5))
    residual = [rows[name]["residual_mean"] for name in names]
    true = [rows[name]["true_mean"] for name in names]
    axes.bar(positions - 0.2, residual, 0.4, label="fit residual (sim)")
    axes.bar(positions + 0.2, true, 0.4, label="error vs truth (sim)")
    axes.axhline(results["raw"]["true_mean"], color="k", ls="--", label="raw landmarks")
    axes.axhline(SEED_RESIDUAL_MM, color="r", ls=":", label="seed residual 9.71")
    axes.set_xticks(positions, names, rotation=30, ha="right")
    axes.set_ylabel("mean joint error (mm)")
    axes.set_title("Fit residual is not label accuracy")
    axes.set_ylim(0, 1.3 * max(residual + true + [SEED_RESIDUAL_MM]))
    axes.legend(loc="upper center", ncol=4)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
