"""`python -m training calibrate-bench` at a tiny size: the figures it prints are
the means over the new people, and the pre-trained model comes from the cache."""

import io
import json
from contextlib import redirect_stdout

import pytest

from training.__main__ import main
from training.calibration_bench import gains_pct

TINY = [
    "calibrate-bench", "--subjects", "2", "--pretrain-minutes", "0.2",
    "--pretrain-epochs", "1", "--calibration-s", "20", "--test-minutes", "0.2",
    "--finetune-epochs", "1", "--scratch-epochs", "1",
    "--new-subjects", "1000", "1001",
]  # fmt: skip


def test_gains_are_how_much_lower_the_fine_tuned_error_is():
    gains = gains_pct({"pretrained": 10.0, "finetuned": 7.0, "scratch": 8.75})
    assert gains == pytest.approx({"pretrained": 30.0, "scratch": 20.0})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    lines = []
    for _ in range(2):
        output = io.StringIO()
        with redirect_stdout(output):
            assert main([*TINY, "--cache", str(cache)]) == 0
        lines.append(json.loads(output.getvalue().splitlines()[-1]))
    return lines, cache


def test_the_figures_are_means_over_the_new_people(runs):
    result = runs[0][0]
    assert result["new_subjects"] == [1000, 1001]
    rows = result["per_person_mm"]
    assert [row[0] for row in rows] == [1000, 1001]
    for column, name in enumerate(("pretrained", "finetuned", "scratch"), start=1):
        mean = sum(row[column] for row in rows) / len(rows)
        assert result[f"{name}_mpjpe_mm"] == pytest.approx(mean, abs=0.01)
    gains = gains_pct({name: result[f"{name}_mpjpe_mm"]
                       for name in ("pretrained", "finetuned", "scratch")})  # fmt: skip
    assert result["gain_vs_scratch_pct"] == pytest.approx(gains["scratch"], abs=0.2)
    assert result["target_met"] == (min(gains.values()) >= 20.0)
    assert 0 <= result["people_meeting_target"] <= 2


def test_a_second_run_reuses_the_cached_pre_training_and_agrees(runs):
    (first, second), cache = runs
    assert len(list(cache.glob("pretrained-*/final.pt"))) == 1
    for key in ("pretrained_mpjpe_mm", "finetuned_mpjpe_mm", "scratch_mpjpe_mm"):
        assert first[key] == second[key]
