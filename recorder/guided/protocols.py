"""Guided recording protocols as data, and the checks every definition must pass.

A protocol is a JSON object:

    {"name": "calibration", "title": "Calibration (1 minute)",
     "description": "...",                                   (optional)
     "steps": [{"name": "fist", "gesture": "fist",
                "prompt": "Make a tight fist", "hold_s": 3,
                "repetitions": 2, "rest_s": 2,
                "free_movement": false}, ...]}              (optional, false)

Each repetition of a step is `rest_s` of rest (the prompt says what comes next),
then `hold_s` holding the gesture. A free-movement step asks the person to move
freely for `hold_s`; its gesture is the pose the 3D prompt starts from.
The built-in protocols are the JSON files next to this module.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from recorder.guided.poses import GESTURE_NAMES

FILES_DIR = Path(__file__).parent / "files"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
MAX_STEPS = 200
MAX_DURATION_S = 600.0  # one hold or rest; longer is surely a typo
MAX_REPETITIONS = 100
MAX_TEXT = 300

PROTOCOL_FIELDS = {"name", "title", "description", "steps"}
STEP_FIELDS = {
    "name",
    "gesture",
    "prompt",
    "hold_s",
    "repetitions",
    "rest_s",
    "free_movement",
}


class GuidedProtocolError(ValueError):
    """A protocol definition is unusable; the message names the field."""


@dataclass(frozen=True)
class Step:
    name: str
    gesture: str
    prompt: str
    hold_s: float
    repetitions: int
    rest_s: float
    free_movement: bool = False

    @property
    def duration_s(self) -> float:
        return self.repetitions * (self.rest_s + self.hold_s)


@dataclass(frozen=True)
class GuidedProtocol:
    name: str
    title: str
    description: str
    steps: tuple[Step, ...]

    @property
    def duration_s(self) -> float:
        return sum(step.duration_s for step in self.steps)

    @property
    def gestures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(step.gesture for step in self.steps))

    def as_dict(self) -> dict:
        """The definition as JSON-ready data (parse_protocol's input format)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "steps": [asdict(step) for step in self.steps],
        }


def parse_protocol(definition: object) -> GuidedProtocol:
    """Check a definition (parsed JSON) and build the protocol, or raise
    GuidedProtocolError naming the first bad field."""
    if not isinstance(definition, dict):
        raise GuidedProtocolError("a protocol must be a JSON object")
    _refuse_unknown_fields(definition, PROTOCOL_FIELDS, "protocol")
    name = _text(definition, "name", "protocol")
    if not NAME_PATTERN.match(name):
        raise GuidedProtocolError(
            f"name: {name!r} must be 1-60 lowercase letters, digits, '-' or '_'"
        )
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        raise GuidedProtocolError("steps: missing; a protocol needs at least one step")
    if len(steps) > MAX_STEPS:
        raise GuidedProtocolError(f"steps: {len(steps)} steps; at most {MAX_STEPS}")
    return GuidedProtocol(
        name=name,
        title=_text(definition, "title", "protocol"),
        description=_text(definition, "description", "protocol", required=False),
        steps=tuple(_parse_step(step, f"steps[{i}]") for i, step in enumerate(steps)),
    )


def _parse_step(step: object, where: str) -> Step:
    if not isinstance(step, dict):
        raise GuidedProtocolError(f"{where}: a step must be a JSON object")
    _refuse_unknown_fields(step, STEP_FIELDS, where)
    gesture = _text(step, "gesture", where)
    if gesture not in GESTURE_NAMES:
        raise GuidedProtocolError(
            f"{where}.gesture: unknown gesture {gesture!r}; "
            f"known: {', '.join(GESTURE_NAMES)}"
        )
    free_movement = step.get("free_movement", False)
    if not isinstance(free_movement, bool):
        raise GuidedProtocolError(f"{where}.free_movement: must be true or false")
    return Step(
        name=_text(step, "name", where),
        gesture=gesture,
        prompt=_text(step, "prompt", where),
        hold_s=_seconds(step, "hold_s", where, allow_zero=False),
        repetitions=_repetitions(step, where),
        rest_s=_seconds(step, "rest_s", where, allow_zero=True),
        free_movement=free_movement,
    )


def _refuse_unknown_fields(definition: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(definition) - known)
    if unknown:
        raise GuidedProtocolError(
            f"{where}: unknown field {unknown[0]!r}; "
            f"fields are {', '.join(sorted(known))}"
        )


def _text(definition: dict, field: str, where: str, required: bool = True) -> str:
    prefix = "" if where == "protocol" else f"{where}."
    value = definition.get(field, None if required else "")
    if value is None:
        raise GuidedProtocolError(f"{prefix}{field}: missing")
    if not isinstance(value, str):
        raise GuidedProtocolError(f"{prefix}{field}: must be text")
    value = value.strip()
    if required and not value:
        raise GuidedProtocolError(f"{prefix}{field}: must not be empty")
    if len(value) > MAX_TEXT:
        raise GuidedProtocolError(f"{prefix}{field}: longer than {MAX_TEXT} characters")
    return value


def _number(definition: dict, field: str, where: str) -> float:
    value = definition.get(field)
    if value is None:
        raise GuidedProtocolError(f"{where}.{field}: missing")
    # JSON true/false are ints to Python; a duration of true is a mistake
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GuidedProtocolError(f"{where}.{field}: must be a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise GuidedProtocolError(f"{where}.{field}: must be a finite number")
    return float(value)


def _seconds(definition: dict, field: str, where: str, allow_zero: bool) -> float:
    seconds = _number(definition, field, where)
    if seconds < 0:
        raise GuidedProtocolError(
            f"{where}.{field}: must not be negative, got {seconds:g} s"
        )
    if seconds == 0 and not allow_zero:
        raise GuidedProtocolError(f"{where}.{field}: must be more than 0 s")
    if seconds > MAX_DURATION_S:
        raise GuidedProtocolError(
            f"{where}.{field}: {seconds:g} s is over the limit of {MAX_DURATION_S:g} s"
        )
    return seconds


def _repetitions(step: dict, where: str) -> int:
    repetitions = _number(step, "repetitions", where)
    if repetitions != int(repetitions) or not 1 <= repetitions <= MAX_REPETITIONS:
        raise GuidedProtocolError(
            f"{where}.repetitions: must be a whole number from 1 to "
            f"{MAX_REPETITIONS}, got {repetitions:g}"
        )
    return int(repetitions)


def load_protocol_file(path: Path) -> GuidedProtocol:
    """A protocol from a JSON file; errors name the file and the field."""
    try:
        return parse_protocol(json.loads(Path(path).read_text()))
    except json.JSONDecodeError as error:
        raise GuidedProtocolError(f"{path}: not valid JSON: {error}") from error
    except GuidedProtocolError as error:
        raise GuidedProtocolError(f"{path}: {error}") from error


def builtin_protocols() -> dict[str, GuidedProtocol]:
    """The protocols shipped in `files/`, by name, in file-name order."""
    protocols = {}
    for path in sorted(FILES_DIR.glob("*.json")):
        protocol = load_protocol_file(path)
        if protocol.name in protocols:
            raise GuidedProtocolError(
                f"{path}: a second protocol named {protocol.name}"
            )
        protocols[protocol.name] = protocol
    return protocols
