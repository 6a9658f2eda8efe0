import json

import numpy as np
import pytest

from inference.cpep_gestures import CpepGestureRecognizer
from training.__main__ import main
from training.cpep.gesture_data import GestureSetup, build_gesture_data
from training.simulated import simulated_labeled_session

TINY = [
    "cpep-bench", "--size", "tiny", "--pretrain-subjects", "2",
    "--reference-subjects", "1", "--test-subjects", "1", "--cycles", "1",
    "--mae-epochs", "1", "--cpep-epochs", "1", "--threads", "1",
]  # fmt: skip
KEYS = (
    "zero_shot_unseen_acc", "linear_probe_unseen_acc", "zero_shot_in_dist_acc",
    "linear_probe_in_dist_acc", "chance", "baseline_lp_unseen_acc",
)  # fmt: skip


def test_unseen_gestures_and_test_subjects_stay_out_of_training():
    setup = GestureSetup(
        pretrain_subjects=2, reference_subjects=1, test_subjects=1, cycles=1
    )
    data = build_gesture_data(setup, emg_steps=996, pose_steps=60)
    assert set(data.unseen) == {
        "pinch",
        "peace",
        "thumb_flex",
        "ring_flex",
        "pinky_flex",
    }
    assert set(data.pretrain_gestures.gesture) == set(data.seen)
    assert (
        set(data.reference.gesture)
        == set(data.test.gesture)
        == set(data.seen + data.unseen)
    )
    training_subjects = set(data.pretrain.subject) | set(data.reference.subject)
    assert training_subjects.isdisjoint(set(data.test.subject))
    assert set(data.pretrain.subject).isdisjoint(set(data.reference.subject))
    # normalized with the pre-training subjects' statistics
    emg = data.pretrain.emg.reshape(-1, 8)
    np.testing.assert_allclose(emg.std(axis=0), 1.0, atol=0.1)


def test_cpep_bench_runs_end_to_end_and_prints_one_json_line(capsys, tmp_path):
    assert main([*TINY, "--out", str(tmp_path / "cpep.pt")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in KEYS:
        assert 0.0 <= result[key] <= 1.0, key
    assert result["chance"] == pytest.approx(0.2)
    assert set(result["methods"]) == {
        "cpep", "cpep_frozen_emg", "cpep_random_init", "cpep_avg_pool",
        "poset_supervised", "emg_mae", "pose_mae_upper_bound",
    }  # fmt: skip
    assert result["windows"]["test"] > 0
    # the saved model recognizes gestures in a live EMG stream
    recognizer = CpepGestureRecognizer.from_checkpoint(tmp_path / "cpep.pt")
    emg = simulated_labeled_session(2.5, subject_seed=40).emg
    assert recognizer.push(emg).gesture in recognizer.names


def test_an_unknown_unseen_gesture_is_named_in_the_error(capsys):
    assert main(["cpep-bench", "--unseen", "wave", "fist"]) == 2
    assert "['wave']" in capsys.readouterr().err
