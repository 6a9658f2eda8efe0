"""Multi-subject simulated data in the emg2pose layout, with user and stage metadata.

A user is a simulator seed (its anatomy and habits); a stage, as in emg2pose, is a
set of movements: here a gesture protocol of its own (SIMULATED_STAGES), so a
held-out stage brings gestures never trained on. Each (user, stage) pair is one
session (the stage's index is the simulator's session: a little band
re-placement and fresh noise), labeled with the simulator's truth, exported by
the product's exporter (recorder/emg2pose_format.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from recorder.emg2pose_format import export_emg2pose
from recorder.simulation.gestures import HOLD_S, REST_S
from training.simulated import simulated_labeled_session


def _protocol(*gestures: str) -> tuple[tuple[str, float], ...]:
    return tuple(step for g in gestures for step in ((g, HOLD_S), ("rest", REST_S)))


SIMULATED_STAGES = {
    "fingers": _protocol(
        "thumb_flex", "index_flex", "middle_flex", "ring_flex", "pinky_flex"
    ),
    "grips": _protocol("fist", "open", "pinch"),
    "signs": _protocol("point", "peace", "thumbs_up"),
    "mixed": _protocol("open", "pinch", "fist", "index_flex", "thumbs_up"),
}


def simulated_file_name(user: int, stage: str) -> str:
    return f"user{user}-{stage}.h5"


def write_simulated_emg2pose(
    out_dir: str | Path, users: int, stages: int = 3, seconds_per_stage: float = 60.0
) -> list[Path]:
    """Writes users × stages emg2pose files into `out_dir` (created); returns
    their paths. User k is simulator seed k; metadata user "simulated-k", stage
    the SIMULATED_STAGES name."""
    if users < 1 or not 1 <= stages <= len(SIMULATED_STAGES):
        raise ValueError(
            f"need users >= 1 and 1 <= stages <= "
            f"{len(SIMULATED_STAGES)}, got {users} and {stages}"
        )
    if not seconds_per_stage > 0:
        raise ValueError(f"seconds_per_stage must be positive: {seconds_per_stage}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for user in range(users):
        for index, stage in enumerate(list(SIMULATED_STAGES)[:stages]):
            recording = simulated_labeled_session(
                seconds_per_stage,
                subject_seed=user,
                session=index,
                protocol=SIMULATED_STAGES[stage],
            )
            recording.attrs.protocol = stage  # the exporter's "stage"
            recording.attrs.session = f"simulated-{user}-{stage}"
            paths.append(out_dir / simulated_file_name(user, stage))
            export_emg2pose(recording, paths[-1])
        print(f"simulated user {user}: {stages} stages", file=sys.stderr)
    return paths
