"""The agent <-> server wire protocol: binary chunks and JSON messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recorder.devices.base import EmgChunk
from recorder.protocol import (
    HEADER,
    MAX_CHUNK_BYTES,
    MAX_SAMPLES_PER_CHUNK,
    MAX_TEXT_BYTES,
    ProtocolError,
    decode_chunk,
    encode_chunk,
    make_message,
    parse_message,
    peek_header,
)


def make_samples(
    n: int = 20, channels: int = 8, imu: bool = True, seed: int = 0
) -> EmgChunk:
    rng = np.random.default_rng(seed)
    return EmgChunk(
        emg=rng.normal(0, 50, (n, channels)).astype(np.float32),
        time=1000.0 + np.arange(n) / 500.0,
        package_num=np.arange(n, dtype=np.int64) + 7,
        imu=rng.normal(0, 1, (n, 6)).astype(np.float32) if imu else None,
    )


def reheader(frame: bytes, **changes) -> bytes:
    """The frame with some header fields replaced (its CRC still fits the payload)."""
    names = ("magic", "version", "stream", "channels", "flags", "session", "seq", "n",
             "first_time", "crc")  # fmt: skip
    fields = dict(zip(names, HEADER.unpack_from(frame), strict=True))
    fields.update(changes)
    return HEADER.pack(*fields.values()) + frame[HEADER.size :]


def expect_error(code: str, frame: bytes, *words: str, expected_channels=None) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_chunk(frame, expected_channels=expected_channels)
    assert caught.value.code == code
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def assert_same_samples(actual: EmgChunk, expected: EmgChunk) -> None:
    np.testing.assert_array_equal(actual.emg, expected.emg)
    np.testing.assert_array_equal(actual.time, expected.time)
    np.testing.assert_array_equal(actual.package_num, expected.package_num)
    if expected.imu is None:
        assert actual.imu is None
    else:
        np.testing.assert_array_equal(actual.imu, expected.imu)
    assert actual.emg.dtype == np.float32 and actual.time.dtype == np.float64
    assert actual.package_num.dtype == np.int64


# ---------------------------------------------------------------- binary chunks


@pytest.mark.parametrize("with_imu", [True, False])
def test_a_chunk_decodes_to_what_was_encoded(with_imu):
    samples = make_samples(imu=with_imu)
    chunk = decode_chunk(encode_chunk(42, 0, 9, samples), expected_channels=8)
    assert (chunk.session_id, chunk.stream_id, chunk.seq, chunk.num_samples) == (
        42,
        0,
        9,
        20,
    )
    assert_same_samples(chunk.samples, samples)


def test_peek_header_reads_ids_and_sample_count_without_decoding():
    frame = encode_chunk(2**40 + 3, 0, 123456, make_samples(n=17))
    assert peek_header(frame) == (2**40 + 3, 0, 123456, 17)


def test_the_same_samples_always_encode_to_the_same_bytes():
    assert encode_chunk(1, 0, 5, make_samples()) == encode_chunk(
        1, 0, 5, make_samples()
    )


def test_a_frame_shorter_than_the_header_is_rejected():
    expect_error("bad_chunk", b"EMGC\x01", "shorter", "header")


def test_a_frame_over_the_size_limit_is_rejected():
    expect_error("too_large", b"\0" * (MAX_CHUNK_BYTES + 1), "exceeds")


def test_bad_magic_is_rejected():
    frame = reheader(encode_chunk(1, 0, 0, make_samples()), magic=b"JUNK")
    expect_error("bad_chunk", frame, "not an EMG chunk")


def test_an_unknown_protocol_version_is_rejected():
    frame = reheader(encode_chunk(1, 0, 0, make_samples()), version=2)
    expect_error("bad_version", frame, "version 2")


def test_an_unknown_stream_is_rejected():
    frame = reheader(encode_chunk(1, 0, 0, make_samples()), stream=9)
    expect_error("bad_stream", frame, "stream id 9")


def test_a_channel_count_other_than_the_announced_one_is_rejected():
    frame = encode_chunk(1, 0, 0, make_samples(channels=8))
    expect_error(
        "bad_channels", frame, "8 channels", "announced 4", expected_channels=4
    )


@pytest.mark.parametrize("channels", [0, 65])
def test_a_channel_count_out_of_range_is_rejected(channels):
    frame = reheader(encode_chunk(1, 0, 0, make_samples()), channels=channels)
    expect_error("bad_channels", frame, f"{channels} channels", "out of range")


def test_a_chunk_without_samples_is_rejected():
    frame = encode_chunk(1, 0, 0, EmgChunk.empty(8, with_imu=True))
    expect_error("bad_chunk", frame, "0 samples")


def test_a_chunk_with_too_many_samples_is_rejected():
    frame = reheader(encode_chunk(1, 0, 0, make_samples()), n=MAX_SAMPLES_PER_CHUNK + 1)
    expect_error("bad_chunk", frame, f"{MAX_SAMPLES_PER_CHUNK + 1} samples")


@pytest.mark.parametrize("extra", [b"\0\0\0\0", None])
def test_a_payload_of_the_wrong_length_is_rejected(extra):
    frame = encode_chunk(1, 0, 0, make_samples())
    frame = frame + extra if extra else frame[:-4]
    expect_error("bad_chunk", frame, "payload is")


def test_a_payload_that_claims_imu_it_does_not_carry_is_rejected():
    frame = reheader(encode_chunk(1, 0, 0, make_samples(imu=False)), flags=1)
    expect_error("bad_chunk", frame, "payload is")


def test_a_corrupted_payload_fails_the_checksum():
    frame = bytearray(encode_chunk(1, 0, 3, make_samples()))
    frame[HEADER.size + 200] ^= 0x10
    expect_error("bad_checksum", bytes(frame), "seq 3", "CRC")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_emg_is_rejected(bad):
    samples = make_samples()
    samples.emg[5, 2] = bad
    expect_error("not_finite", encode_chunk(1, 0, 4, samples), "EMG", "seq 4")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_imu_is_rejected(bad):
    samples = make_samples()
    samples.imu[3, 5] = bad
    expect_error("not_finite", encode_chunk(1, 0, 4, samples), "IMU")


def test_decreasing_sample_times_are_rejected():
    samples = make_samples()
    samples.time[10] = samples.time[9] - 0.001
    expect_error("bad_time", encode_chunk(1, 0, 0, samples), "non-decreasing")


def test_a_non_finite_sample_time_is_rejected():
    samples = make_samples()
    samples.time[-1] = np.inf
    expect_error("bad_time", encode_chunk(1, 0, 0, samples), "finite")


def test_a_header_time_that_disagrees_with_the_payload_is_rejected():
    frame = reheader(encode_chunk(1, 0, 0, make_samples()), first_time=5.0)
    expect_error("bad_time", frame, "header first-sample time")


def test_repeated_sample_times_are_allowed():
    samples = make_samples()
    samples.time[:] = 1000.0
    assert decode_chunk(encode_chunk(1, 0, 0, samples)).num_samples == 20


# ---------------------------------------------------------------- JSON messages


def message(type_: str, **fields) -> str:
    return json.dumps({"v": 1, "type": type_, **fields})


def expect_message_error(code: str, text, *words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_message(text)
    assert caught.value.code == code
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_a_valid_message_parses_to_its_fields():
    parsed = parse_message(
        message("recording.start", session=3, band_rotation_deg=12.5)
    )
    assert parsed == {
        "v": 1,
        "type": "recording.start",
        "session": 3,
        "band_rotation_deg": 12.5,
    }


def test_a_message_parses_from_bytes_too():
    assert parse_message(message("agent.ping").encode())["type"] == "agent.ping"


def test_make_message_output_parses_back():
    text = make_message("chunk.ack", session=1, stream=0, seqs=[1, 2, 3])
    assert parse_message(text)["seqs"] == [1, 2, 3]


def test_invalid_json_is_rejected():
    expect_message_error("bad_json", '{"v": 1, "type": ', "not valid JSON")


def test_invalid_utf8_is_rejected_as_bad_json():
    expect_message_error("bad_json", b'{"v": 1, "type": "\xff"}', "not valid JSON")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_constants_are_rejected(constant):
    text = '{"v": 1, "type": "recording.start", "session": 1, "band_rotation_deg": %s}'
    expect_message_error("bad_json", text % constant, constant.lstrip("-"))


def test_a_number_that_overflows_to_infinity_is_rejected():
    text = (
        '{"v": 1, "type": "recording.start", "session": 1, "band_rotation_deg": 1e999}'
    )
    expect_message_error("bad_schema", text, "band_rotation_deg", "finite")


@pytest.mark.parametrize("text", ["[1, 2]", '"hello"', "3", "null"])
def test_a_message_that_is_not_an_object_is_rejected(text):
    expect_message_error("bad_schema", text, "JSON object")


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_a_wrong_protocol_version_is_rejected(version):
    text = json.dumps({"v": version, "type": "agent.ping"})
    expect_message_error("bad_version", text, "protocol version")


def test_an_unknown_message_type_is_rejected():
    expect_message_error(
        "bad_type", message("agent.dance"), "unknown message type", "agent.dance"
    )


def test_a_missing_field_is_rejected():
    expect_message_error(
        "bad_schema",
        message("recording.stop"),
        "recording.stop",
        "missing field 'session'",
    )


def test_a_field_of_the_wrong_type_is_rejected():
    expect_message_error(
        "bad_schema", message("recording.stop", session="7"), "'session'", "must be int"
    )


def test_a_bool_where_an_int_is_expected_is_rejected():
    expect_message_error(
        "bad_schema",
        message("recording.stop", session=True),
        "'session'",
        "must be int",
    )


def test_an_int_is_accepted_where_a_float_is_allowed():
    assert (
        parse_message(message("recording.start", session=1, band_rotation_deg=0))[
            "band_rotation_deg"
        ]
        == 0
    )


def test_a_message_over_the_size_limit_is_rejected():
    text = message("error", code="x", message="a" * MAX_TEXT_BYTES)
    expect_message_error("too_large", text, "exceeds")


def test_make_message_refuses_an_invalid_message():
    with pytest.raises(ProtocolError) as caught:
        make_message("recording.stopped", session=1, chunks=2, samples=3, reason="done")
    assert caught.value.code == "bad_schema"
    assert "dropped_packets" in str(caught.value)
    with pytest.raises(ProtocolError):
        make_message("no.such.type")
    with pytest.raises(ProtocolError):
        make_message("recording.start", session=1, band_rotation_deg=float("nan"))
