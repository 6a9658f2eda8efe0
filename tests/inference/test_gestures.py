import numpy as np
import pytest

from inference.gestures import (
    MIRROR_X,
    GestureRecognizer,
    default_examples,
    joints_from_angles,
)
from recorder.guided.poses import TARGET_ANGLES, _with_fingers


def test_each_default_gesture_is_recognized_from_its_own_hand():
    examples = default_examples()
    recognizer = GestureRecognizer(examples)
    for name, hands in examples.items():
        guess = recognizer.classify(hands[0])
        assert guess.gesture == name
        assert 0.5 < guess.confidence <= 1.0 and guess.distance_mm == 0.0


def test_a_left_hand_is_recognized_as_the_same_gesture():
    recognizer = GestureRecognizer(default_examples())
    left_point = joints_from_angles(TARGET_ANGLES["point"])[0] * MIRROR_X
    assert recognizer.classify(left_point).gesture == "point"


def test_a_hand_far_from_every_example_gets_no_name():
    recognizer = GestureRecognizer(default_examples())
    stretched = joints_from_angles(TARGET_ANGLES["open"])[0] * 2.0
    guess = recognizer.classify(stretched)
    assert guess.gesture is None and guess.confidence == 0.0
    assert guess.distance_mm > 25.0


def test_a_new_gesture_is_defined_by_an_example_pose_alone():
    horns = _with_fingers("fist", index="open", pinky="open")
    examples = {**default_examples(), "horns": joints_from_angles(horns)}
    recognizer = GestureRecognizer(examples)
    rng = np.random.default_rng(0)
    noisy = joints_from_angles(horns + rng.normal(0, 0.05, 20))[0]
    assert recognizer.classify(noisy).gesture == "horns"
    assert GestureRecognizer(default_examples()).classify(noisy).gesture != "horns"


def test_the_live_window_averages_jitter_and_forgets_old_poses():
    recognizer = GestureRecognizer(default_examples(), window_s=0.3)
    rng = np.random.default_rng(1)
    fist = joints_from_angles(TARGET_ANGLES["fist"])[0]
    guesses = [
        recognizer.push(t / 60, fist + rng.normal(0, 6.0, (21, 3))) for t in range(30)
    ]
    assert guesses[-1].gesture == "fist"
    assert guesses[-1].distance_mm < np.mean([g.distance_mm for g in guesses[:1]])
    open_hand = joints_from_angles(TARGET_ANGLES["open"])[0]
    later = [recognizer.push(1.0 + t / 60, open_hand) for t in range(30)]
    assert later[-1].gesture == "open" and later[-1].distance_mm < 1e-6
    message = later[-1].to_message()
    assert message["gesture"] == "open" and 0 < message["gesture_confidence"] <= 1


def test_adding_a_chunks_poses_then_guessing_once_equals_pushing_each():
    rng = np.random.default_rng(2)
    point = joints_from_angles(TARGET_ANGLES["point"])[0]
    poses = [(t / 60, point + rng.normal(0, 4.0, (21, 3))) for t in range(12)]
    pushed, added = (GestureRecognizer(default_examples()) for _ in range(2))
    for time_s, joints in poses:
        last = pushed.push(time_s, joints)
        added.add(time_s, joints)
    assert added.guess() == last and last.gesture == "point"


def test_unusable_examples_are_refused_by_name():
    with pytest.raises(ValueError, match="'wave'.*\\(n, 21, 3\\)"):
        GestureRecognizer({"wave": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="'fist'.*NaN"):
        GestureRecognizer({"fist": np.full((21, 3), np.nan)})
    with pytest.raises(ValueError, match="at least one gesture"):
        GestureRecognizer({})
