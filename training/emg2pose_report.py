"""The emg2pose benchmark's results table, in the layout of the paper's (001_*):
one row per task and model, two columns per generalization split (angular error
in degrees, landmark distance in mm), baselines as rows of their own; then the
details (fingertip distance, per joint group and per finger angular error).
"""

from __future__ import annotations

import json
from pathlib import Path

from labeling.kinematics import FINGERS
from training.emg2pose_metrics import HAND_MODEL_NOTE, JOINT_GROUPS

SPLIT_TITLES = {"user": "User", "stage": "Stage", "user_stage": "User, Stage"}
TASK_TITLES = {"tracking": "Tracking", "regression": "Regression"}
BASELINE_TITLES = {
    "hold_pose": "hold start pose (baseline)",
    "mean_pose": "mean pose (baseline)",
}


def _cells(scores_by_split: dict, key: str, splits: list[str]) -> list[str]:
    cells = []
    for name in splits:
        scores = scores_by_split[name][key]
        cells += [
            f"{scores['angular_error_deg']:.1f}",
            f"{scores['landmark_distance_mm']:.1f}",
        ]
    return cells


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main_table(results: list[dict], splits: list[str]) -> list[str]:
    header = ["Task", "Model"]
    for name in splits:
        title = SPLIT_TITLES[name]
        header += [f"{title}: angular error (°)", f"{title}: landmark distance (mm)"]
    lines = [_row(header), _row(["---"] * len(header))]
    for task in dict.fromkeys(r["task"] for r in results):
        mine = [r for r in results if r["task"] == task]
        for result in mine:
            cells = _cells(result["splits"], "model", splits)
            lines.append(_row([TASK_TITLES[task], result["model"], *cells]))
        # baselines from the first model's windows (every tracking model shares
        # them; regression windows differ a little by model, see results.json)
        for key, title in BASELINE_TITLES.items():
            if key in mine[0]["splits"][splits[0]]:
                cells = _cells(mine[0]["splits"], key, splits)
                lines.append(_row([TASK_TITLES[task], title, *cells]))
    return lines


def details_table(results: list[dict], splits: list[str]) -> list[str]:
    header = ["Task", "Model", "Split", "fingertip (mm)", "MPJPE (mm)"]
    header += [f"{group} (°)" for group in JOINT_GROUPS]
    header += [f"{finger} (°)" for finger in FINGERS] + ["windows", "epochs"]
    lines = [_row(header), _row(["---"] * len(header))]
    for result in results:
        for name in splits:
            scores = result["splits"][name]["model"]
            lines.append(
                _row(
                    [
                        TASK_TITLES[result["task"]],
                        result["model"],
                        SPLIT_TITLES[name],
                        f"{scores['fingertip_distance_mm']:.1f}",
                        f"{scores['mpjpe_mm']:.1f}",
                        *(
                            f"{scores['per_group_angular_error_deg'][g]:.1f}"
                            for g in JOINT_GROUPS
                        ),
                        *(
                            f"{scores['per_finger_angular_error_deg'][f]:.1f}"
                            for f in FINGERS
                        ),
                        str(scores["windows"]),
                        str(result["epochs"]),
                    ]
                )
            )
    return lines


def markdown(results: list[dict], split, args) -> str:
    splits = list(split.tests)
    lines = [
        "# emg2pose benchmark",
        "",
        f"Data: `{args.data}`. Held-out users: {split.test_users or 'none'}; "
        f"held-out stages: {split.test_stages or 'none'}; {split.validation_note}. "
        f"Training budget {args.budget_s:g} s per model and task; tracking horizon "
        f"{args.tracking_window_s:g} s (the start pose is given).",
        "",
        f"Note: {HAND_MODEL_NOTE}; MPJPE compares the model's own joints to the "
        "labels' joints.",
        "",
        *main_table(results, splits),
        "",
        "## Details (model rows)",
        "",
        *details_table(results, splits),
        "",
    ]
    return "\n".join(lines)


def write_reports(out_dir: Path, results: list[dict], split, args) -> None:
    """results.md (the tables) and results.json (every number) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(markdown(results, split, args))
    record = {
        "test_users": split.test_users,
        "test_stages": split.test_stages,
        "validation": split.validation_note,
        "hand_model": HAND_MODEL_NOTE,
        "results": results,
    }
    (out_dir / "results.json").write_text(json.dumps(record, indent=1))
