"""The session review page and its JSON ranges, on a small fabricated session whose
every value is known: EMG channel 0 is the sample index, channel 1 its negative."""

from __future__ import annotations

import math

import numpy as np
import pytest
from django.conf import settings

from recorder.session_file import (
    SessionAttributes,
    SessionEvent,
    SessionRecording,
    write_session,
)

RATE_HZ = 500.0
SAMPLES = 1000  # 2 s
FRAMES = 20  # at 10 Hz
INVALID_FRAMES = (5, 6, 7)


def fabricated_recording(with_labels: bool = True) -> SessionRecording:
    index = np.arange(SAMPLES)
    emg = np.stack([index, -index], axis=1).astype(np.float32)  # (N, 2) µV
    frame_index = np.arange(FRAMES)
    labels = {}
    if with_labels:
        label_valid = np.ones(FRAMES, bool)
        label_valid[list(INVALID_FRAMES)] = False
        labels = dict(
            frame_time=frame_index / 10.0,
            joints=np.repeat(frame_index, 63).reshape(FRAMES, 21, 3).astype(np.float32),
            ik_error=np.full(FRAMES, 2.5, np.float32),
            label_valid=label_valid,
        )  # fmt: skip
    return SessionRecording(
        emg=emg, emg_time=index / RATE_HZ, package_num=index.astype(np.int64),
        attrs=SessionAttributes(sampling_rate_hz=RATE_HZ, channel_names=("a", "b")),
        events=[
            SessionEvent(0.0, "recording", "start"),
            SessionEvent(0.5, "gesture", "fist"),
            SessionEvent(1.2, "gesture", "rest"),
            SessionEvent(1.998, "recording", "end"),
        ],
        **labels,
    )  # fmt: skip


@pytest.fixture
def make_reviewable(make_session, storage):
    """A complete session of `owner` whose file is the fabricated recording."""

    def make(owner, with_labels: bool = True):
        session = make_session(owner, status="complete")
        relative = f"sessions/review-{session.pk}.h5"
        path = settings.MEDIA_ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_session(path, fabricated_recording(with_labels))
        session.file.name = relative
        session.save(update_fields=["file"])
        return session

    return make


def get_json(client, session, what: str, **query):
    response = client.get(f"/sessions/{session.pk}/review/{what}", query)
    return response.status_code, response.json()


def test_the_session_page_links_to_the_review(alice, alice_client, make_reviewable):
    session = make_reviewable(alice)
    page = alice_client.get(f"/sessions/{session.pk}/").content.decode()
    assert f'href="/sessions/{session.pk}/review/"' in page
    review = alice_client.get(f"/sessions/{session.pk}/review/")
    assert review.status_code == 200
    assert b"js/session_review.js" in review.content


def test_bob_cannot_review_alices_session(alice, bob_client, make_reviewable):
    session = make_reviewable(alice)
    base = f"/sessions/{session.pk}/review/"
    assert bob_client.get(base).status_code == 404
    assert bob_client.get(base + "overview").status_code == 404
    assert bob_client.get(base + "emg", {"start": 0, "end": 1}).status_code == 404
    assert bob_client.get(base + "labels", {"start": 0, "end": 1}).status_code == 404


def test_the_overview_has_steps_with_their_statistics(
    alice, alice_client, make_reviewable
):
    status, overview = get_json(alice_client, make_reviewable(alice), "overview")
    assert status == 200
    assert overview["duration_s"] == pytest.approx(1.998)
    assert overview["channels"] == ["a", "b"]
    assert overview["has_labels"] and overview["labels_note"] is None
    steps = [(s["name"], s["start_s"], s["end_s"]) for s in overview["steps"]]
    assert steps == [("fist", 0.5, 1.2), ("rest", 1.2, pytest.approx(1.998))]
    fist, rest, whole = overview["step_stats"]
    # samples 250..599: the RMS about the mean of 350 consecutive integers
    assert (
        fist["emg_rms_uv"]
        == [pytest.approx(math.sqrt((350**2 - 1) / 12), abs=0.01)] * 2
    )
    assert (fist["label_frames"], fist["label_valid_fraction"]) == (
        7,
        pytest.approx(4 / 7, abs=1e-4),
    )
    assert (rest["label_frames"], rest["label_valid_fraction"]) == (8, 1.0)
    assert whole["name"] == "whole session" and whole["label_frames"] == FRAMES
    assert overview["invalid_label_spans"] == [[0.5, 0.8]]


def test_wide_bins_come_from_the_block_tier(alice, alice_client, make_reviewable):
    session = make_reviewable(alice)
    status, envelope = get_json(
        alice_client, session, "emg", start=0.001, end=2.001, bins=5
    )
    assert status == 200
    assert envelope["tier"] == "blocks of 25 samples"
    assert envelope["time_s"] == pytest.approx([0.001, 0.401, 0.801, 1.201, 1.601])
    # a bin holds the 50 ms blocks that start in it: blocks 8k+1 .. 8k+8
    assert envelope["min"][0] == [25, 225, 425, 625, 825]
    assert envelope["max"][0] == [224, 424, 624, 824, 999]
    assert envelope["max"][1] == [-25, -225, -425, -625, -825]


def test_narrow_bins_read_the_raw_samples(alice, alice_client, make_reviewable):
    session = make_reviewable(alice)
    status, envelope = get_json(
        alice_client, session, "emg", start=0.001, end=0.201, bins=20
    )
    assert status == 200 and envelope["tier"] == "raw"
    assert len(envelope["time_s"]) == 20
    assert envelope["min"][0] == [5 * k + 1 for k in range(20)]
    assert envelope["max"][0] == [5 * k + 5 for k in range(20)]


def test_fewer_samples_than_bins_come_back_as_they_are(
    alice, alice_client, make_reviewable
):
    session = make_reviewable(alice)
    _, envelope = get_json(alice_client, session, "emg", start=0.001, end=0.021)
    assert envelope["tier"] == "samples"
    assert envelope["min"][0] == envelope["max"][0] == list(range(1, 11))
    assert envelope["time_s"] == pytest.approx([k / RATE_HZ for k in range(1, 11)])


def test_label_frames_of_a_range(alice, alice_client, make_reviewable):
    session = make_reviewable(alice)
    status, labels = get_json(alice_client, session, "labels", start=0.25, end=0.75)
    assert status == 200 and labels["stride"] == 1
    assert labels["time_s"] == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])
    assert labels["label_valid"] == [True, True, False, False, False]
    assert [frame[:3] for frame in labels["joints_mm"]] == [
        [k] * 3 for k in range(3, 8)
    ]
    assert all(len(frame) == 63 for frame in labels["joints_mm"])
    assert labels["ik_error_mm"] == [2.5] * 5
    _, decimated = get_json(
        alice_client, session, "labels", start=0.25, end=0.75, max_frames=2
    )
    assert decimated["stride"] == 3
    assert decimated["time_s"] == pytest.approx([0.3, 0.6])


@pytest.mark.parametrize(
    ("what", "query", "message"),
    [
        ("emg", {"end": 1}, "start is required"),
        ("emg", {"start": "soon", "end": 1}, "start must be a number, got 'soon'"),
        ("emg", {"start": 1, "end": 1}, "start (1 s) must be before end (1 s)"),
        ("emg", {"start": 5, "end": 9}, "[5, 9) s is outside the session"),
        ("emg", {"start": "nan", "end": 1}, "must be finite"),
        ("emg", {"start": 0, "end": 1, "bins": 0}, "bins must be 1 to 4000, got 0"),
        ("emg", {"start": 0, "end": 1, "bins": "many"}, "bins must be an integer"),
        ("labels", {"start": 0, "end": 1, "max_frames": 9999}, "max_frames must be"),
    ],
)
def test_bad_ranges_are_explained(
    alice, alice_client, make_reviewable, what, query, message
):
    status, body = get_json(alice_client, make_reviewable(alice), what, **query)
    assert status == 400
    assert message in body["error"]


def test_a_session_without_labels_reviews_with_a_note(
    alice, alice_client, make_reviewable
):
    session = make_reviewable(alice, with_labels=False)
    status, overview = get_json(alice_client, session, "overview")
    assert status == 200 and not overview["has_labels"]
    assert "no camera label track" in overview["labels_note"]
    assert overview["step_stats"][0]["label_valid_fraction"] is None
    assert get_json(alice_client, session, "emg", start=0, end=1)[0] == 200
    status, body = get_json(alice_client, session, "labels", start=0, end=1)
    assert status == 404 and "no camera label track" in body["error"]


def test_a_session_without_a_file_says_so(alice, alice_client, make_session):
    session = make_session(alice)
    page = alice_client.get(f"/sessions/{session.pk}/review/")
    assert b"has no file yet" in page.content
    status, body = get_json(alice_client, session, "overview")
    assert status == 404 and body["error"] == "This session has no file yet."
