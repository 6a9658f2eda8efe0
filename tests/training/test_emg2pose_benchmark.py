"""`python -m training benchmark` end to end on tiny simulated emg2pose data."""

import json

import pytest

from training.__main__ import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """3 users x 2 stages x 4 s; one tcn per task, one epoch each."""
    root = tmp_path_factory.mktemp("bench")
    argv = [
        "benchmark",
        "--data",
        str(root / "data"),
        "--simulate",
        "3",
        "--stages",
        "2",
        "--seconds-per-stage",
        "4",
        "--split",
        "user",
        "stage",
        "user_stage",
        "--task",
        "regression",
        "tracking",
        "--models",
        "tcn",
        "--budget-s",
        "0.1",
        "--max-epochs",
        "1",
        "--tracking-window-s",
        "0.2",
        "--stride",
        "50",
        "--out",
        str(root / "out"),
        "--device",
        "cpu",
    ]
    return root, argv


def test_it_writes_the_paper_table_and_one_json_line(tiny_run, capsys):
    root, argv = tiny_run
    assert main(argv) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["test_users"] == ["simulated-2"]
    assert line["test_stages"] == ["grips"]
    assert "this product's built-in hand model" in line["hand_model"]
    keys = {
        f"{t}/tcn/{s}"
        for t in ("regression", "tracking")
        for s in ("user", "stage", "user_stage")
    }
    assert set(line["results"]) == keys
    tracking = line["results"]["tracking/tcn/user"]
    assert (
        tracking["angular_error_deg"] > 0 and "hold_pose_angular_error_deg" in tracking
    )
    assert "hold_pose_angular_error_deg" not in line["results"]["regression/tcn/user"]
    table = (root / "out" / "results.md").read_text()
    assert (
        "| Task | Model | User: angular error (°) | User: landmark distance (mm) | "
        "Stage: angular error (°)"
    ) in table
    user_error_deg = line["results"]["regression/tcn/user"]["angular_error_deg"]
    assert f"| Regression | tcn | {user_error_deg:.1f} |" in table
    assert "| Tracking | hold start pose (baseline) |" in table
    assert "| Regression | mean pose (baseline) |" in table
    details = json.loads((root / "out" / "results.json").read_text())
    assert len(details["results"]) == 2


def test_a_split_the_data_cannot_make_is_an_error(tiny_run, capsys):
    root, argv = tiny_run
    code = main(
        [
            "benchmark",
            "--data",
            str(root / "data"),
            "--split",
            "stage",
            "--test-stages",
            "fingers",
            "grips",
            "--models",
            "v5",
            "--out",
            str(root / "out2"),
        ]
    )
    assert code == 2
    assert "leaves no training sessions" in capsys.readouterr().err
    code = main(
        [
            "benchmark",
            "--data",
            str(root / "data"),
            "--simulate",
            "2",
            "--models",
            "v5",
            "--out",
            str(root / "out2"),
        ]
    )
    assert code == 2
    assert "already holds .h5 files" in capsys.readouterr().err
