"""Reading MediaPipe's recorded hand landmark .pbtxt files."""

import numpy as np
import pytest

from labeling.pbtxt import parse_pbtxt, read_landmarks_pbtxt
from tests.labeling.conftest import HANDS_DIR, require_hands_dir

WRIST, MIDDLE_MCP, INDEX_TIP, MIDDLE_TIP = 0, 9, 8, 12


def test_it_reads_21_landmarks_handedness_and_score(recorded_path):
    recorded = read_landmarks_pbtxt(recorded_path)
    assert recorded.image_landmarks.shape == (21, 3)
    assert recorded.world_landmarks_m.shape == (21, 3)
    assert np.isfinite(recorded.image_landmarks).all()
    assert np.isfinite(recorded.world_landmarks_m).all()
    assert recorded.handedness == "right"
    assert recorded.score == 1.0
    assert (
        (recorded.image_landmarks[:, :2] > 0) & (recorded.image_landmarks[:, :2] < 1)
    ).all()


def test_world_landmarks_are_in_metres(recorded_path):
    world_m = read_landmarks_pbtxt(recorded_path).world_landmarks_m
    palm_length_m = np.linalg.norm(world_m[MIDDLE_MCP] - world_m[WRIST])
    assert 0.06 <= palm_length_m <= 0.12


def test_the_first_and_last_values_match_the_file():
    require_hands_dir()
    recorded = read_landmarks_pbtxt(HANDS_DIR / "thumb_up_landmarks.pbtxt")
    np.testing.assert_allclose(
        recorded.image_landmarks[0], [0.6387502, 0.67134184, -3.4044612e-07]
    )
    np.testing.assert_allclose(
        recorded.world_landmarks_m[-1], [0.012793289, 0.03930679, -0.012465539]
    )


def test_pointing_up_has_the_index_finger_highest():
    require_hands_dir()
    image_landmarks = read_landmarks_pbtxt(
        HANDS_DIR / "pointing_up_landmarks.pbtxt"
    ).image_landmarks
    # Image y grows downward: the raised index tip has the smallest y.
    assert np.argmin(image_landmarks[:, 1]) == INDEX_TIP


def test_parse_pbtxt_handles_nesting_strings_comments_and_repeats():
    text = 'outer { label: "a # b" # note\n value: 1.5e-3 inner { flag: TRUE } }\n'
    text += "outer { value: -2 }"
    message = parse_pbtxt(text)
    assert message["outer"][0]["label"] == ["a # b"]
    assert message["outer"][0]["value"] == [0.0015]
    assert message["outer"][0]["inner"] == [{"flag": ["TRUE"]}]
    assert message["outer"][1] == {"value": [-2.0]}


@pytest.mark.parametrize("text", ["outer { value: 1", "outer { } }", "value:"])
def test_parse_pbtxt_rejects_broken_text(text):
    with pytest.raises(ValueError):
        parse_pbtxt(text)


def test_a_file_without_world_landmarks_fails_clearly(tmp_path):
    path = tmp_path / "partial.pbtxt"
    path.write_text('classifications { classification { score: 1 label: "Left" } }')
    with pytest.raises(ValueError, match="landmarks"):
        read_landmarks_pbtxt(path)
