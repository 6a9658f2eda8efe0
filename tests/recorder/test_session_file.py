"""The session HDF5 format: round trips, atomic writes, validation, gaps."""

from __future__ import annotations

import dataclasses
import re

import h5py
import numpy as np
import pytest

from recorder.devices.packets import PacketCounter
from recorder.session_file import (
    FORMAT_VERSION,
    LABEL_FIELDS,
    SessionFormatError,
    read_session,
    session_summary,
    write_session,
)
from tests.recorder.synthetic import make_emg_recording, make_labelled_recording

ARRAY_FIELDS = ("emg", "emg_time", "package_num", "imu", *LABEL_FIELDS)


def assert_same_recording(actual, expected) -> None:
    for name in ARRAY_FIELDS:
        stored, original = getattr(actual, name), getattr(expected, name)
        if original is None:
            assert stored is None, name
            continue
        assert stored.dtype == original.dtype, name
        np.testing.assert_array_equal(stored, original, err_msg=name)
    assert actual.events == expected.events
    assert actual.attrs == expected.attrs


def test_it_round_trips_every_field(tmp_path):
    recording = make_labelled_recording()
    write_session(tmp_path / "s.h5", recording)
    assert_same_recording(read_session(tmp_path / "s.h5"), recording)


def test_it_keeps_nan_landmarks_as_nan(tmp_path):
    recording = make_labelled_recording()
    write_session(tmp_path / "s.h5", recording)
    stored = read_session(tmp_path / "s.h5")
    assert np.isnan(stored.landmarks[~stored.label_valid]).all()
    assert not (stored.landmarks[~stored.label_valid] == 0).any()


def test_it_round_trips_without_label_track_or_imu(tmp_path):
    recording = make_emg_recording()
    recording.imu = None
    recording.events = []
    write_session(tmp_path / "s.h5", recording)
    stored = read_session(tmp_path / "s.h5")
    assert_same_recording(stored, recording)
    assert not stored.has_labels


def test_it_round_trips_unknown_package_modulus_and_a_known_one(tmp_path):
    for modulus in (None, 65536):
        recording = make_emg_recording()
        recording.attrs.package_modulus = modulus
        write_session(tmp_path / "s.h5", recording)
        assert read_session(tmp_path / "s.h5").attrs.package_modulus == modulus


def test_it_stores_gaps_from_package_num_without_filling_them(tmp_path):
    recording = make_emg_recording(samples=600, drop_packets_at=(100, 400))
    recording.package_num[400:] += 2  # a gap of 3 packets at 400
    write_session(tmp_path / "s.h5", recording)
    with h5py.File(tmp_path / "s.h5") as h5:
        gaps = h5["emg_gaps"][()]
        assert len(h5["emg"]) == 600
    assert gaps.dtype == np.int64
    np.testing.assert_array_equal(gaps, [[100, 1], [400, 3]])


def test_it_stores_an_empty_gaps_table_when_nothing_dropped(tmp_path):
    write_session(tmp_path / "s.h5", make_emg_recording())
    with h5py.File(tmp_path / "s.h5") as h5:
        assert h5["emg_gaps"].shape == (0, 2)


def test_gaps_use_the_counter_modulus_across_a_wrap(tmp_path):
    recording = make_emg_recording(samples=10)
    recording.package_num = np.array([252, 253, 254, 255, 0, 1, 3, 4, 5, 6])
    recording.attrs.package_modulus = 256
    write_session(tmp_path / "s.h5", recording)
    with h5py.File(tmp_path / "s.h5") as h5:
        np.testing.assert_array_equal(h5["emg_gaps"][()], [[6, 1]])


def test_summary_reads_metadata(tmp_path):
    recording = make_labelled_recording()
    write_session(tmp_path / "s.h5", recording)
    summary = session_summary(tmp_path / "s.h5")
    assert summary["sample_count"] == 1000
    assert summary["duration_s"] == pytest.approx(999 / 500)
    assert summary["channels"] == list(recording.attrs.channel_names)
    assert summary["has_labels"] is True
    assert summary["format_version"] == FORMAT_VERSION
    assert summary["dropped_packets"] == 0


def test_summary_says_when_there_are_no_labels(tmp_path):
    write_session(tmp_path / "s.h5", make_emg_recording(drop_packets_at=(5,)))
    summary = session_summary(tmp_path / "s.h5")
    assert summary["has_labels"] is False
    assert summary["dropped_packets"] == 1


# ---------------------------------------------------------------- bad inputs


def broken(change) -> object:
    recording = make_labelled_recording()
    change(recording)
    return recording


BAD_RECORDINGS = {
    "nan emg": (lambda r: r.emg.__setitem__((3, 2), np.nan), "emg: NaN"),
    "inf landmarks": (lambda r: r.landmarks.__setitem__(0, np.inf), "landmarks: inf"),
    "emg float64": (
        lambda r: setattr(r, "emg", r.emg.astype(np.float64)),
        "emg: dtype",
    ),
    "emg 1-d": (lambda r: setattr(r, "emg", r.emg[:, 0]), "emg: shape"),
    "wrong channel count": (
        lambda r: setattr(r, "emg", r.emg[:, :7].copy()),
        "emg: has 7 channels",
    ),
    "short emg_time": (
        lambda r: setattr(r, "emg_time", r.emg_time[:-1]),
        "emg_time: has 999 rows",
    ),
    "imu wrong width": (lambda r: setattr(r, "imu", r.imu[:, :3].copy()), "imu: shape"),
    "time goes back": (
        lambda r: r.emg_time.__setitem__(500, 0.0),
        "emg_time: times go backwards",
    ),
    "short label_valid": (
        lambda r: setattr(r, "label_valid", r.label_valid[:-1]),
        "label_valid: has",
    ),
    "landmarks wrong shape": (
        lambda r: setattr(r, "landmarks", r.landmarks[:, :20].copy()),
        "landmarks: shape",
    ),
    "labels without frame_time": (
        lambda r: setattr(r, "frame_time", None),
        "frame_time: required",
    ),
    "IK labels without mask": (
        lambda r: setattr(r, "label_valid", None),
        "label_valid: required",
    ),
    "event with no kind": (
        lambda r: setattr(r.events[0], "kind", ""),
        "events[0]: kind",
    ),
}


@pytest.mark.parametrize("case", BAD_RECORDINGS, ids=list(BAD_RECORDINGS))
def test_it_rejects_bad_recordings_naming_the_field(tmp_path, case):
    change, message = BAD_RECORDINGS[case]
    with pytest.raises(SessionFormatError, match=re.escape(message)):
        write_session(tmp_path / "s.h5", broken(change))
    assert list(tmp_path.iterdir()) == []


def test_nan_emg_error_says_where(tmp_path):
    recording = broken(lambda r: r.emg.__setitem__((3, 2), np.nan))
    with pytest.raises(SessionFormatError, match=r"emg: NaN or infinite .* \[3, 2\]"):
        write_session(tmp_path / "s.h5", recording)


def test_a_failed_write_keeps_the_existing_good_file(tmp_path):
    good = make_emg_recording()
    write_session(tmp_path / "s.h5", good)
    bad = dataclasses.replace(good, emg=good.emg.astype(np.float64))
    with pytest.raises(SessionFormatError):
        write_session(tmp_path / "s.h5", bad)
    assert_same_recording(read_session(tmp_path / "s.h5"), good)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]


def test_a_crash_mid_write_leaves_no_file(tmp_path, monkeypatch):
    import recorder.session_file as session_file

    def crash(h5, recording):
        h5.create_dataset("emg", data=recording.emg)
        raise KeyboardInterrupt

    monkeypatch.setattr(session_file, "_write_contents", crash)
    with pytest.raises(KeyboardInterrupt):
        write_session(tmp_path / "s.h5", make_emg_recording())
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_a_newer_format_version(tmp_path):
    write_session(tmp_path / "s.h5", make_emg_recording())
    with h5py.File(tmp_path / "s.h5", "a") as h5:
        h5.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(SessionFormatError, match="version 2 is not one"):
        read_session(tmp_path / "s.h5")
    with pytest.raises(SessionFormatError, match="version 2"):
        session_summary(tmp_path / "s.h5")


def test_it_refuses_an_hdf5_file_that_is_not_a_session(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5.create_dataset("emg", data=np.zeros((3, 8), np.float32))
    with pytest.raises(SessionFormatError, match="not a session file"):
        read_session(tmp_path / "other.h5")


def test_it_refuses_a_file_that_is_not_hdf5(tmp_path):
    (tmp_path / "notes.h5").write_text("hello")
    with pytest.raises(SessionFormatError, match="not a readable HDF5 file"):
        read_session(tmp_path / "notes.h5")


def test_packet_counter_counts_losses_across_chunks_and_a_wrap():
    counter = PacketCounter(modulus=256)
    assert counter.update(np.array([250, 251, 253])) == 1
    assert counter.update(np.array([255, 0, 1])) == 1  # 254 lost between reads
    assert counter.update(np.array([], np.int64)) == 0
    assert counter.update(np.array([1, 4])) == 2  # a repeated value is not a loss
    assert counter.dropped_packets == 4


def test_packet_counter_without_a_modulus_does_not_guess_across_a_wrap():
    counter = PacketCounter(modulus=None)
    counter.update(np.array([65534, 65535, 0, 1, 3]))
    assert counter.dropped_packets == 1
    assert counter.resets == 1
