"""The live hand's gesture label: the inference worker names the gesture its
model's poses hold, from example poses, whatever the model."""

from __future__ import annotations

import time

import numpy as np

from inference import PoseFrame
from inference.gestures import joints_from_angles
from recorder.guided.poses import TARGET_ANGLES
from webapp.live.predictors import PredictorRoom

RATE_HZ = 500.0
T0 = 1_700_000_000.0


class PosePlayer:
    """A stand-in model: each push ends on the hand it is told to show."""

    model_name, num_channels, sampling_rate_hz = "stand-in", 8, RATE_HZ

    def __init__(self):
        self.joints_mm = joints_from_angles(TARGET_ANGLES["fist"])[0]

    def push(self, emg_uv, first_time_s):
        last_s = first_time_s + (len(emg_uv) - 1) / RATE_HZ
        return [PoseFrame(last_s, self.joints_mm.astype(np.float32), "ok", 1.0)]

    def reset(self):
        pass

    def check_channels(self, num_channels):
        pass


def chunk(first_index: int, n: int = 50) -> dict:
    return {
        "session": 1,
        "first_time_s": T0 + first_index / RATE_HZ,
        "num_channels": 8,
        "sampling_rate_hz": RATE_HZ,
        "emg": np.zeros((n, 8), np.float32).tobytes(),
        "received_at_s": time.time(),
    }


def test_each_pose_carries_the_gesture_it_holds_and_its_confidence():
    model = PosePlayer()
    room = PredictorRoom(load=lambda *args, **kwargs: model)
    room.watch({"session": 1, "run": 7, "checkpoint": "/models/x.pt", "reply_to": None})
    [(_, _, pose)] = room.push(chunk(0))
    assert pose["gesture"] == "fist" and 0.5 < pose["gesture_confidence"] <= 1.0
    model.joints_mm = joints_from_angles(TARGET_ANGLES["open"])[0]
    # the label follows once the open hand fills the recognizer's 0.3 s window;
    # meanwhile the mean of both hands is near no example
    events = [room.push(chunk(50 * k))[0][2] for k in range(1, 10)]
    assert events[0]["gesture"] != "open" and events[-1]["gesture"] == "open"
    assert events[-1]["gesture_confidence"] > 0.5
