"""CPEP's gesture task on emg2pose-layout files: stages are the gestures, users
the roles. The files are simulated sessions exported by the product's exporter."""

import json

import pytest

from recorder.emg2pose_format import export_emg2pose
from training.__main__ import main
from training.cpep.emg2pose_gestures import read_staged, staged_gesture_data
from training.data import DataError
from training.simulated import simulated_labeled_session

STAGES = ("open", "fist", "point", "pinch")


@pytest.fixture(scope="module")
def emg2pose_dir(tmp_path_factory):
    """3 users x 4 stages, ~9 s each: the stage's gesture held, then rest."""
    folder = tmp_path_factory.mktemp("emg2pose")
    for user in range(3):
        for stage in STAGES:
            recording = simulated_labeled_session(
                9.0, subject_seed=user, protocol=((stage, 3.0), ("rest", 1.0))
            )
            recording.attrs.protocol = stage  # exported as the stage
            recording.attrs.session = f"user{user}-{stage}"
            export_emg2pose(recording, folder / f"user{user}-{stage}.h5")
    return folder


def test_stages_are_gestures_and_unseen_stages_stay_out_of_training(emg2pose_dir):
    staged = read_staged(emg2pose_dir)
    assert sorted(stage for _, stage in staged) == sorted(STAGES * 3)
    data = staged_gesture_data(staged, ["pinch", "point"], 1, 1, 996, 120)
    assert (data.seen, data.unseen) == (["fist", "open"], ["pinch", "point"])
    assert set(data.pretrain_gestures.gesture) == {"fist", "open"}
    assert set(data.pretrain.subject) == {"simulated-0"}
    assert set(data.reference.subject) == {"simulated-1"}
    assert set(data.test.subject) == {"simulated-2"}
    assert len(data.pretrain) == 2 * 8  # two seen stages, 1 s stride over 9 s
    assert len(data.test) == 4 * 4  # four stages, non-overlapping 2 s windows
    with pytest.raises(DataError, match=r"unseen stages \['wave'\]"):
        staged_gesture_data(staged, ["wave", "fist"], 1, 1, 996, 120)
    with pytest.raises(DataError, match="need 1 reference, 2 test"):
        staged_gesture_data(staged, ["pinch", "point"], 1, 2, 996, 120)


def test_cpep_bench_runs_on_emg2pose_files(emg2pose_dir, capsys):
    argv = [
        "cpep-bench", "--emg2pose", str(emg2pose_dir), "--unseen", "pinch", "point",
        "--reference-subjects", "1", "--test-subjects", "1", "--size", "tiny",
        "--mae-epochs", "1", "--cpep-epochs", "1", "--threads", "1",
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["chance"] == 0.5 and result["unseen"] == ["pinch", "point"]
    assert 0.0 <= result["zero_shot_unseen_acc"] <= 1.0
