"""Guided recording protocols as data: the shipped files, the checks every
definition passes, and the target hands for the 3D prompt."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from recorder.guided.poses import GESTURE_NAMES, target_joints_mm
from recorder.guided.protocols import (
    GuidedProtocolError,
    builtin_protocols,
    load_protocol_file,
    parse_protocol,
)

GOOD = {
    "name": "tiny",
    "title": "Tiny",
    "steps": [
        {
            "name": "fist",
            "gesture": "fist",
            "prompt": "Make a fist",
            "hold_s": 2,
            "repetitions": 3,
            "rest_s": 1.5,
        }
    ],
}


def with_change(path: str, value) -> dict:
    """GOOD with one field set (value=...) or removed (value=DELETE)."""
    definition = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = definition
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return definition


DELETE = object()


def test_the_shipped_protocols_load():
    protocols = builtin_protocols()
    assert set(protocols) == {"000", "calibration", "emg2pose-stages"}
    assert 200 <= protocols["000"].duration_s <= 280  # "about 4 minutes"
    assert 45 <= protocols["calibration"].duration_s <= 75  # "1 minute"


def test_the_seed_protocol_prompts_every_seed_gesture():
    gestures = set(builtin_protocols()["000"].gestures)
    fingers = {f"{f}_flex" for f in ("thumb", "index", "middle", "ring", "pinky")}
    assert {"open", "fist", "point", "pinch", "peace", "rest"} | fingers <= gestures


def test_the_emg2pose_stages_are_all_there():
    steps = builtin_protocols()["emg2pose-stages"].steps
    names = " ".join(step.name for step in steps)
    for stage in ("count", "wiggling", "pinch", "thumb", "free-form"):
        assert stage in names
    assert any(step.free_movement for step in steps)


def test_a_good_definition_parses_and_round_trips():
    protocol = parse_protocol(GOOD)
    assert protocol.steps[0].repetitions == 3
    assert protocol.duration_s == pytest.approx(3 * (2 + 1.5))
    assert parse_protocol(protocol.as_dict()) == protocol


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("title", DELETE, "title: missing"),
        ("steps", DELETE, "steps: missing"),
        ("steps", [], "steps: missing"),
        ("steps.0.prompt", DELETE, "steps[0].prompt: missing"),
        ("steps.0.hold_s", DELETE, "steps[0].hold_s: missing"),
        ("steps.0.hold_s", -1, "steps[0].hold_s: must not be negative"),
        ("steps.0.hold_s", 0, "steps[0].hold_s: must be more than 0 s"),
        ("steps.0.rest_s", -0.5, "steps[0].rest_s: must not be negative"),
        ("steps.0.rest_s", "2", "steps[0].rest_s: must be a number"),
        ("steps.0.hold_s", True, "steps[0].hold_s: must be a number"),
        ("steps.0.repetitions", 0, "steps[0].repetitions: must be a whole number"),
        ("steps.0.repetitions", 1.5, "steps[0].repetitions: must be a whole number"),
        ("steps.0.gesture", "wave", "steps[0].gesture: unknown gesture 'wave'"),
        ("steps.0.hold", 2, "steps[0]: unknown field 'hold'"),
        ("steps.0.free_movement", "yes", "steps[0].free_movement: must be true"),
        ("name", "Has Spaces", "name: 'Has Spaces' must be"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_field(path, value, message):
    with pytest.raises(GuidedProtocolError, match=message.replace("[", r"\[")):
        parse_protocol(with_change(path, value))


def test_a_bad_file_is_refused_naming_the_file_and_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(with_change("steps.0.hold_s", -2)))
    with pytest.raises(GuidedProtocolError) as refused:
        load_protocol_file(path)
    assert str(path) in str(refused.value)
    assert "steps[0].hold_s: must not be negative" in str(refused.value)


def test_every_gesture_has_a_target_hand_with_the_wrist_at_the_origin():
    targets = target_joints_mm(GESTURE_NAMES)
    assert set(targets) == set(GESTURE_NAMES)
    for joints in targets.values():
        joints = np.array(joints).reshape(21, 3)
        assert np.allclose(joints[0], 0.0)
        assert 60 < np.linalg.norm(joints[9]) < 120  # wrist to middle MCP, mm


def test_a_fist_curls_the_fingertips_toward_the_palm():
    targets = target_joints_mm(["open", "fist"])
    open_tip = np.array(targets["open"]).reshape(21, 3)[8]  # index fingertip
    fist_tip = np.array(targets["fist"]).reshape(21, 3)[8]
    assert np.linalg.norm(fist_tip) < np.linalg.norm(open_tip) - 50
