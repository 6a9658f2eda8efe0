"""Read MediaPipe hand-landmarker results saved as protobuf text (.pbtxt).

The files (e.g. mediapipe/tasks/testdata/vision/thumb_up_landmarks.pbtxt) hold:
    classifications { classification { score: 1.0 label: "Right" ... } }
    landmarks { landmark { x: .. y: .. z: .. } x21 }        # normalized image coords
    world_landmarks { landmark { x: .. y: .. z: .. } x21 }  # metres
They are Tasks API outputs, so the label is already the person's actual hand (the
convention of labeling.landmarks). A small hand-written parser reads the text format
subset they use: nested messages, numbers and double-quoted strings.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from labeling.landmarks import NUM_LANDMARKS, HandDetection

# Tokens: a quoted string, a comment, a brace, a colon, or a bare word/number.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|#[^\n]*|[{}:]|[^\s{}:"#]+')

Message = dict[str, list]


def _tokens(text: str) -> list[str]:
    return [token for token in _TOKEN.findall(text) if not token.startswith("#")]


def _scalar(token: str) -> str | float:
    if token.startswith('"'):
        return token[1:-1]
    try:
        return float(token)
    except ValueError:
        return token  # an enum name or bool


def _parse_message(tokens: list[str], start: int) -> tuple[Message, int]:
    """Parse fields from tokens[start] up to a closing brace (or the end).
    Returns the message (field name -> list of values) and the index after it."""
    message: Message = {}
    index = start
    while index < len(tokens) and tokens[index] != "}":
        name = tokens[index]
        if tokens[index + 1] == ":" and tokens[index + 2] != "{":
            message.setdefault(name, []).append(_scalar(tokens[index + 2]))
            index += 3
            continue
        brace = index + 2 if tokens[index + 1] == ":" else index + 1
        if tokens[brace] != "{":
            raise ValueError(f"unexpected token {tokens[brace]!r} after {name!r}")
        child, index = _parse_message(tokens, brace + 1)
        message.setdefault(name, []).append(child)
        index += 1  # the closing brace
    return message, index


def parse_pbtxt(text: str) -> Message:
    """Protobuf text format -> nested dict; every field maps to a list of values."""
    tokens = _tokens(text)
    try:
        message, end = _parse_message(tokens, 0)
    except IndexError:
        raise ValueError("truncated pbtxt: a field or block is not closed") from None
    if end != len(tokens):
        raise ValueError("unbalanced braces in pbtxt")
    return message


def _landmark_list(message: Message, field: str) -> np.ndarray:
    """(21, 3) float64 from a `field { landmark { x y z } ... }` block."""
    if field not in message:
        raise ValueError(f"pbtxt has no {field!r} block")
    points = message[field][0].get("landmark", [])
    if len(points) != NUM_LANDMARKS:
        raise ValueError(
            f"{field}: expected {NUM_LANDMARKS} landmarks, got {len(points)}"
        )
    return np.array(
        [[point.get(axis, [0.0])[0] for axis in "xyz"] for point in points], np.float64
    )


def read_landmarks_pbtxt(path: str | Path) -> HandDetection:
    """A MediaPipe landmark .pbtxt file -> HandDetection (image_landmarks normalized,
    world_landmarks_m in metres, handedness "left"/"right", score)."""
    message = parse_pbtxt(Path(path).read_text())
    category = message["classifications"][0]["classification"][0]
    return HandDetection(
        image_landmarks=_landmark_list(message, "landmarks"),
        world_landmarks_m=_landmark_list(message, "world_landmarks"),
        handedness=str(category["label"][0]).lower(),
        score=float(category["score"][0]),
    )
