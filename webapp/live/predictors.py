"""The inference worker's state: one LivePredictor per (session, model run) that a
browser tab watches. Plain Python: the worker consumer calls these steps on its
inference thread and sends the events they return.

Each step returns a list of `(kind, name, event)`: kind "group" for group_send,
"channel" for send (a reply to one tab).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference import InferenceInputError, LivePredictor, OneEuroConfig
from inference.gestures import GestureRecognizer, default_examples
from training.checkpoint import CheckpointError
from webapp import storage
from webapp.live.groups import hand_group
from webapp.recordings.ingest import WATCH_TTL_S

log = logging.getLogger(__name__)

POSE_RATE_HZ = 60.0  # poses computed per second of signal; tabs get the newest
# a longer hole between samples (the agent reconnected): the filters start afresh
MAX_GAP_S = 0.5
# samples that waited this long before the worker got to them (it is behind) still
# feed the predictor, but their pose is not worth sending ...
LATE_AFTER_S = 0.1
# ... except now and then, so an overloaded worker still shows something
LATE_POSE_INTERVAL_S = 0.25
# Samples that waited longer are dropped unfed: a worker this far behind cannot
# catch up by feeding them (its load exceeds its CPU), so it sheds load instead,
# and the filters restart on the fresh samples after the gap (MAX_GAP_S).
SHED_AFTER_S = 1.0
DEFAULT_SMOOTHING = {"enabled": True, "min_cutoff_hz": 1.0, "beta": 0.05}

Outgoing = list[tuple[str, str, dict]]


@dataclass
class Watched:
    """A predictor some tab watches, or the reason it cannot run (`refusal`)."""

    session_id: int
    run_id: int
    predictor: LivePredictor | None
    smoothing: dict | None
    watched_until_s: float
    refusal: dict | None = None  # {"code", "message"}
    gestures: GestureRecognizer | None = None  # names the gesture of its poses
    last_time_s: float = -math.inf  # agent clock: the newest sample pushed
    last_sent_s: float = 0.0  # monotonic: the last pose sent

    @property
    def group(self) -> str:
        return hand_group(self.session_id, self.run_id)


def load_checkpoint(checkpoint: Path, **options) -> LivePredictor:
    """LivePredictor.from_checkpoint, on a path or a storage key (see below)."""
    return LivePredictor.from_checkpoint(checkpoint_file(str(checkpoint)), **options)


def checkpoint_file(name: str) -> Path:
    """A local checkpoint file: an absolute path is one on this machine, anything
    else a storage key (webapp/live/db.py sends keys), fetched from storage."""
    if Path(name).is_absolute():
        return Path(name)
    return storage.local_copy(name)


def one_euro(smoothing: dict | None) -> OneEuroConfig | None:
    """The engine's filter settings from the page's {"enabled", "min_cutoff_hz",
    "beta"}; None when smoothing is off."""
    if not smoothing or not smoothing.get("enabled"):
        return None
    return OneEuroConfig(
        min_cutoff_hz=float(smoothing["min_cutoff_hz"]),
        beta=float(smoothing["beta"]),
        d_cutoff_hz=1.0,
    )


class PredictorRoom:
    def __init__(self, load=None, clock=time.monotonic):
        self.load = load or load_checkpoint
        self.clock = clock
        self.watched: dict[tuple[int, int], Watched] = {}
        self.shed_samples = 0  # EMG values dropped unfed because the worker was behind

    # ------------------------------------------------------------ tabs

    def is_open(self, message: dict) -> bool:
        return (message["session"], message["run"]) in self.watched

    def watch(self, message: dict, loaded=None) -> Outgoing:
        """A tab watches (session, run): open the predictor once, keep it alive.

        `loaded`: what `load_predictor` returned for it, when done beforehand."""
        self.expire()
        key = (message["session"], message["run"])
        entry = self.watched.get(key)
        if entry is None:
            entry = self.watched[key] = self.open(message, loaded)
        entry.watched_until_s = self.clock() + WATCH_TTL_S
        reply_to = message.get("reply_to")
        if not reply_to:
            return []
        return [("channel", reply_to, self.describe(entry))]

    def load_predictor(self, message: dict) -> LivePredictor | dict:
        """The checkpoint's predictor, or a refusal {"code", "message"}. Touches no
        state of the room: it may run on another thread."""
        try:
            return self.load(
                Path(message["checkpoint"]),
                output_rate_hz=POSE_RATE_HZ,
                smoothing=one_euro(DEFAULT_SMOOTHING),
                device="cpu",
            )
        except (CheckpointError, InferenceInputError, OSError, ValueError) as exc:
            log.warning("model run %s cannot be loaded: %s", message["run"], exc)
            return {
                "code": "model_failed",
                "message": f"the model cannot be loaded: {exc}",
            }

    def open(self, message: dict, loaded=None) -> Watched:
        session_id, run_id = message["session"], message["run"]
        entry = Watched(session_id, run_id, None, dict(DEFAULT_SMOOTHING), 0.0)
        loaded = loaded if loaded is not None else self.load_predictor(message)
        if isinstance(loaded, dict):
            entry.refusal = loaded
            return entry
        entry.predictor = loaded
        entry.gestures = GestureRecognizer(default_examples())
        entry.refusal = refusal_for_device(
            loaded, message.get("num_channels"), message.get("sampling_rate_hz")
        )
        return entry

    def describe(self, entry: Watched) -> dict:
        if entry.refusal is not None:
            return {"type": "hand.error", "run": entry.run_id, **entry.refusal}
        predictor = entry.predictor
        return {
            "type": "hand.model",
            "run": entry.run_id,
            "model_name": predictor.model_name,
            "num_channels": predictor.num_channels,
            "sampling_rate_hz": predictor.sampling_rate_hz,
            "smoothing": entry.smoothing,
        }

    def set_smoothing(self, message: dict) -> Outgoing:
        """A tab changed the One-Euro filter: every tab of that predictor sees it."""
        entry = self.watched.get((message["session"], message["run"]))
        if entry is None or entry.predictor is None:
            return []
        smoothing = message["smoothing"]
        try:
            entry.predictor.set_smoothing(one_euro(smoothing))
        except (InferenceInputError, ValueError) as exc:
            error = {"code": "bad_smoothing", "message": f"smoothing refused: {exc}"}
            return [("group", entry.group, {"type": "hand.error", **error})]
        entry.smoothing = smoothing
        event = {"type": "hand.smoothing", "run": entry.run_id, "smoothing": smoothing}
        return [("group", entry.group, event)]

    def expire(self) -> None:
        """Forget predictors no tab has watched for WATCH_TTL_S."""
        now_s = self.clock()
        for key in [k for k, e in self.watched.items() if e.watched_until_s < now_s]:
            del self.watched[key]

    # ------------------------------------------------------------ samples

    def push_batch(self, message: dict) -> Outgoing:
        """The chunks one server process gathered for this worker (SampleForwarder),
        in the order they came."""
        outgoing = []
        for chunk in message["chunks"]:
            outgoing += self.push(chunk)
        return outgoing

    def push(self, message: dict) -> Outgoing:
        """A chunk of a session's EMG: every predictor of the session gets all of
        it, in order; each sends its newest pose, unless it is late."""
        self.expire()
        session_id = message["session"]
        if time.time() - message["received_at_s"] > SHED_AFTER_S:
            self.shed_samples += len(message["emg"]) // 4
            return []
        emg_uv = np.frombuffer(message["emg"], "<f4").reshape(
            -1, message["num_channels"]
        )
        outgoing = []
        for entry in [e for e in self.watched.values() if e.session_id == session_id]:
            if entry.refusal is None:
                outgoing += self.push_one(entry, emg_uv, message)
        return outgoing

    def push_one(self, entry: Watched, emg_uv: np.ndarray, message: dict) -> Outgoing:
        refusal = refusal_for_device(
            entry.predictor, emg_uv.shape[1], message.get("sampling_rate_hz")
        )
        if refusal is not None:
            entry.refusal = refusal
            return [("group", entry.group, {"type": "hand.error", **refusal})]
        new_emg, first_time_s = unseen_samples(
            entry, emg_uv, message["first_time_s"], entry.predictor.sampling_rate_hz
        )
        if not len(new_emg):
            return []
        if first_time_s - entry.last_time_s > MAX_GAP_S:
            entry.predictor.reset()
            entry.gestures.reset()
        entry.last_time_s = (
            first_time_s + (len(new_emg) - 1) / entry.predictor.sampling_rate_hz
        )
        try:
            frames = entry.predictor.push(new_emg, first_time_s)
        except Exception as exc:  # one bad chunk must not stop every session's poses
            log.exception("inference failed for session %s", entry.session_id)
            entry.predictor.reset()
            error = {"code": "inference_failed", "message": f"inference failed: {exc}"}
            return [("group", entry.group, {"type": "hand.error", **error})]
        if not frames:
            return []
        for frame in frames:
            entry.gestures.add(frame.time_s, frame.joints_mm)
        if not self.worth_sending(entry, message["received_at_s"]):
            return []
        pose = {"type": "hand.pose", "run": entry.run_id, **frames[-1].to_message()}
        pose["update_ms"] = round(float(frames[-1].update_ms), 2)
        pose.update(entry.gestures.guess().to_message())
        return [("group", entry.group, pose)]

    def worth_sending(self, entry: Watched, received_at_s: float) -> bool:
        now_s = self.clock()
        late = time.time() - received_at_s > LATE_AFTER_S
        if late and now_s - entry.last_sent_s < LATE_POSE_INTERVAL_S:
            return False
        entry.last_sent_s = now_s
        return True


def refusal_for_device(
    predictor: LivePredictor, num_channels: int | None, sampling_rate_hz: float | None
) -> dict | None:
    """Why this model cannot run on this armband's EMG, or None when it can."""
    if num_channels is not None:
        try:
            predictor.check_channels(int(num_channels))
        except InferenceInputError as exc:
            return {"code": "channel_mismatch", "message": str(exc)}
    model_rate_hz = predictor.sampling_rate_hz
    if sampling_rate_hz is not None and abs(sampling_rate_hz - model_rate_hz) > 1e-6:
        return {
            "code": "rate_mismatch",
            "message": f"the model was trained on EMG at {model_rate_hz:g} Hz but "
            f"this armband samples at {sampling_rate_hz:g} Hz",
        }
    return None


def unseen_samples(
    entry: Watched, emg_uv: np.ndarray, first_time_s: float, rate_hz: float
) -> tuple[np.ndarray, float]:
    """The samples after the newest one already pushed (an agent resends chunks it
    was not sure the server stored), and the first one's time."""
    period_s = 1.0 / rate_hz
    if first_time_s > entry.last_time_s + period_s / 2:
        return emg_uv, first_time_s
    skip = int(math.floor((entry.last_time_s - first_time_s) / period_s + 0.5)) + 1
    return emg_uv[skip:], first_time_s + skip * period_s
