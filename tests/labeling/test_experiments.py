import math

import numpy as np
import pytest

from labeling import experiments

TABLE_TITLES = (
    "## Table I: loss-term ablation",
    "## Table II: alignment method",
    "## Table III: optimizer",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("docs")
    results = experiments.run_experiments(out_dir, frames=40, seed=5)
    return out_dir, results


def all_rows(results):
    for table in ("ablation", "alignment", "optimizer", "streaming"):
        yield from results[table].values()


def test_it_writes_the_three_tables_and_the_plots(report):
    out_dir, _ = report
    text = (out_dir / "ik_experiments.md").read_text()
    for title in TABLE_TITLES:
        assert title in text
    assert "raw landmarks, no IK" in text and "python -m labeling experiments" in text
    for plot in ("img/ik_per_joint_error.png", "img/ik_residual_vs_true_error.png"):
        assert (out_dir / plot).read_bytes().startswith(b"\x89PNG")


def test_every_number_is_finite(report):
    _, results = report
    for row in all_rows(results):
        for key in ("residual_mean", "true_mean", "true_wrist_mean", "ms_per_frame"):
            assert math.isfinite(row[key]), key
    default = results["ablation"]["full + joint limits (our default)"]
    assert np.isfinite(default["per_joint_true"]).all()
    assert np.isfinite(default["real_per_joint_residual"]).all()
    assert len(default["real_residuals"]) == 3


def test_the_full_model_is_closer_to_the_truth_than_the_landmarks(report):
    _, results = report
    raw_mm = results["raw"]["true_mean"]
    for name in (
        "+ regularization (seed's full loss)",
        "full + joint limits (our default)",
    ):
        assert results["ablation"][name]["true_mean"] < raw_mm


def test_missing_real_landmarks_fail_with_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="mediapipe_hands"):
        experiments.run_experiments(tmp_path, frames=10, seed=0, landmarks_dir=tmp_path)
