"""Property-based sweeps of conversions.py (cv_bridge's size/format sweep, with hypothesis): every
supported Image encoding over sizes, row padding and byte order against an independent numpy
reference; JPEG/PNG; every AudioInfo sample format and channel count; and every *_to_msg/*_from_msg
pair both ways. test_conversions.py keeps the worked examples and the error texts."""
import array
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from std_msgs.msg import Header

from emo_perception import conversions as conv
from emo_perception.core.audio_pipeline import AudioResult
from emo_perception.core.face_pipeline import FaceResult
from emo_perception.core.fusion_pipeline import FusionStep, PersonAffect

RAW = [e for e in conv.SUPPORTED_ENCODINGS if e not in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")]
YUV = {"yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
       "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV, "yuyv": cv2.COLOR_YUV2RGB_YUYV}
assert set(RAW) | set(YUV) == set(conv.SUPPORTED_ENCODINGS), "a new encoding needs a reference below"
# encoding -> (channels, bytes per channel, reference RGB from the pixel array), written out by hand
REFERENCE = {
    "rgb8": (3, 1, lambda p: p),
    "bgr8": (3, 1, lambda p: p[..., ::-1]),
    "8UC3": (3, 1, lambda p: p[..., ::-1]),
    "rgba8": (4, 1, lambda p: p[..., :3]),
    "bgra8": (4, 1, lambda p: p[..., 2::-1]),
    "mono8": (1, 1, lambda p: np.repeat(p, 3, axis=2)),
    "8UC1": (1, 1, lambda p: np.repeat(p, 3, axis=2)),
    "mono16": (1, 2, lambda p: np.repeat(p // 256, 3, axis=2)),   # the 8 most significant bits
}
assert set(REFERENCE) == set(RAW)
WRITABLE = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3"]

sizes = st.integers(1, 64)
seeds = st.integers(0, 2**32 - 1)
# byte fields as rclpy (array.array), rosbags (numpy) or hand-made messages (bytes, list) carry them
byte_containers = st.sampled_from(["bytes", "array", "numpy", "list"])


def _container(buf: bytes, kind: str):
    return {"bytes": buf, "array": array.array("B", buf), "numpy": np.frombuffer(buf, np.uint8),
            "list": list(buf)}[kind]


def _image_msg(encoding, h, w, step, data, bigendian=0):
    """Duck-typed sensor_msgs/Image (what the readers accept from rclpy and rosbags alike)."""
    return SimpleNamespace(encoding=encoding, height=h, width=w, step=step, is_bigendian=bigendian, data=data)


def _padded(rows: np.ndarray, step: int, rng) -> bytes:
    """(H, row_bytes) uint8 -> bytes with `step` per row; the padding is noise, never read."""
    h, row_bytes = rows.shape
    out = rng.integers(0, 256, (h, step), dtype=np.uint8)
    out[:, :row_bytes] = rows
    return out.tobytes()


@settings(max_examples=100)
@given(encoding=st.sampled_from(RAW), h=sizes, w=sizes, pad=st.integers(0, 9), bigendian=st.booleans(),
       unpadded_last_row=st.booleans(), kind=byte_containers, seed=seeds)
def test_every_raw_encoding_over_sizes_padding_and_byte_order_matches_a_numpy_reference(
        encoding, h, w, pad, bigendian, unpadded_last_row, kind, seed):
    rng = np.random.default_rng(seed)
    channels, width_bytes, reference = REFERENCE[encoding]
    dtype = np.dtype(f"{'>' if bigendian else '<'}u{width_bytes}")
    pixels = rng.integers(0, 2 ** (8 * width_bytes), (h, w, channels)).astype(dtype)
    row_bytes = w * channels * width_bytes
    data = _padded(pixels.reshape(h, -1).view(np.uint8).reshape(h, row_bytes), row_bytes + pad, rng)
    if unpadded_last_row:
        data = data[: len(data) - pad]     # drivers may leave the last row's padding off
    msg = _image_msg(encoding, h, w, row_bytes + pad, _container(data, kind), int(bigendian))
    out = conv.image_to_rgb(msg)
    expected = reference(pixels.astype(np.uint16)).astype(np.uint8)
    assert out.dtype == np.uint8 and out.shape == (h, w, 3) and out.flags.c_contiguous
    assert np.array_equal(out, expected)


@settings(max_examples=60)
@given(encoding=st.sampled_from(sorted(YUV)), h=sizes, pairs=st.integers(1, 32), pad=st.integers(0, 9), seed=seeds)
def test_packed_yuv422_over_sizes_and_padding_matches_opencv(encoding, h, pairs, pad, seed):
    rng = np.random.default_rng(seed)
    w = 2 * pairs                      # 4:2:2 shares chroma between two pixels: widths are even
    packed = rng.integers(16, 236, (h, w * 2), dtype=np.uint8)
    out = conv.image_to_rgb(_image_msg(encoding, h, w, w * 2 + pad, _padded(packed, w * 2 + pad, rng)))
    ref = cv2.cvtColor(packed.reshape(h, w, 2), YUV[encoding])
    assert out.shape == (h, w, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 3   # both BT.601; rounding differs by a few levels


@settings(max_examples=60)
@given(encoding=st.sampled_from(conv.SUPPORTED_ENCODINGS), h=sizes, w=sizes, short=st.integers(1, 64),
       narrow=st.integers(1, 8), which=st.sampled_from(["data", "step"]), seed=seeds)
def test_short_data_or_a_step_below_one_row_is_a_conversion_error(encoding, h, w, short, narrow, which, seed):
    if encoding in YUV:
        w += w % 2
    channels, width_bytes = (2, 1) if encoding in YUV else REFERENCE[encoding][:2]
    row_bytes = w * channels * width_bytes
    needed = row_bytes * h
    if which == "data":
        step, size = row_bytes, max(0, needed - short)
    else:
        step, size = row_bytes - min(narrow, row_bytes), needed
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    with pytest.raises(conv.ConversionError, match=encoding):
        conv.image_to_rgb(_image_msg(encoding, h, w, step, data))


@settings(max_examples=30)
@given(encoding=st.sampled_from(sorted(YUV)), h=sizes, pairs=st.integers(0, 31))
def test_an_odd_width_of_packed_yuv422_is_a_conversion_error(encoding, h, pairs):
    w = 2 * pairs + 1
    data = bytes(h * w * 2)
    with pytest.raises(conv.ConversionError, match=f"{encoding}.*even"):
        conv.image_to_rgb(_image_msg(encoding, h, w, w * 2, data))


@settings(max_examples=60)
@given(encoding=st.sampled_from(WRITABLE), h=sizes, w=sizes, grey=st.booleans(), seed=seeds)
def test_rgb_to_image_and_back_round_trips_every_writable_encoding(encoding, h, w, grey, seed):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    channels = REFERENCE[encoding][0]
    if channels == 1 or grey:
        rgb = np.repeat(rgb[:, :, :1], 3, axis=2)      # mono keeps one value per pixel
    stamp = Header(frame_id="cam")
    msg = conv.rgb_to_image(rgb, encoding, header=stamp)
    width_bytes = REFERENCE[encoding][1]
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (h, w, encoding, 0)
    assert msg.step == w * channels * width_bytes and len(msg.data) == msg.step * h
    assert msg.header.frame_id == "cam"
    assert np.array_equal(conv.image_to_rgb(msg), rgb)


@settings(max_examples=50)
@given(h=sizes, w=sizes, seed=seeds, fmt=st.sampled_from(["png", "PNG", "rgb8; png compressed bgr8", ""]),
       kind=byte_containers)
def test_png_decodes_exactly_whatever_the_content(h, w, seed, fmt, kind):
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)   # lossless: any pixels
    ok, buf = cv2.imencode(".png", rgb[:, :, ::-1])
    assert ok
    out = conv.compressed_image_to_rgb(SimpleNamespace(format=fmt, data=_container(buf.tobytes(), kind)))
    assert np.array_equal(out, rgb)


@settings(max_examples=50)
@given(h=sizes, w=sizes, colour=st.tuples(*[st.integers(0, 255)] * 3),
       fmt=st.sampled_from(["jpeg", "jpg", "JPEG", "bgr8; jpeg compressed bgr8", ""]), kind=byte_containers)
def test_jpeg_decodes_to_the_same_size_and_colour(h, w, colour, fmt, kind):
    # one colour: JPEG keeps it within a few levels at any size, so a swapped channel shows
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = colour
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    out = conv.compressed_image_to_rgb(SimpleNamespace(format=fmt, data=_container(buf.tobytes(), kind)))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 4


# ---------------------------------------------------------------------------------- audio
# sample format -> (numpy dtype, value of full scale when reading)
PCM = {"S16LE": ("<i2", 2.0**15), "S32LE": ("<i4", 2.0**31), "F32LE": ("<f4", 1.0), "U8": ("u1", 128.0),
       "S8": ("i1", 2.0**7)}
assert set(PCM) == set(conv._SAMPLE_FORMATS), "a new sample format needs a reference below"
channel_counts = st.integers(1, 8)


def _info(fmt, channels, rate=16000, coding="wave"):
    return SimpleNamespace(sample_format=fmt, channels=channels, sample_rate=rate, coding_format=coding)


@settings(max_examples=100)
@given(fmt=st.sampled_from(sorted(PCM)), channels=channel_counts, frames=st.integers(0, 200),
       rate=st.integers(8000, 192000), lower=st.booleans(),
       coding=st.sampled_from(["", "wave", "WAV", "pcm", "raw", "s16le", "audio/x-raw"]), kind=byte_containers,
       seed=seeds)
def test_every_sample_format_and_channel_count_reads_as_the_channel_mean(fmt, channels, frames, rate, lower, coding,
                                                                        kind, seed):
    rng = np.random.default_rng(seed)
    dtype, full_scale = PCM[fmt]
    if fmt == "F32LE":
        samples = rng.uniform(-1, 1, (frames, channels)).astype(dtype)
        as_float = samples.astype(np.float64)
    else:
        info = np.iinfo(np.dtype(dtype))
        samples = rng.integers(info.min, info.max, (frames, channels), endpoint=True).astype(dtype)
        as_float = (samples.astype(np.float64) - (128 if fmt == "U8" else 0)) / full_scale
    af = conv.audio_format_from_info(_info(fmt.lower() if lower else fmt, channels, rate, coding))
    assert af == conv.AudioFormat(rate, channels, fmt)
    mono = conv.audio_bytes_to_mono(_container(samples.tobytes(), kind), af)
    assert mono.dtype == np.float32 and mono.shape == (frames,)
    np.testing.assert_allclose(mono, as_float.mean(axis=1), rtol=1e-6, atol=1e-6)
    assert np.all(np.abs(mono) <= 1.0)


@settings(max_examples=100)
@given(fmt=st.sampled_from(sorted(PCM)), channels=channel_counts,
       mono=st.lists(st.floats(-1.0, 1.0, width=32), max_size=200).map(lambda v: np.array(v, np.float32)))
def test_mono_to_pcm_and_back_is_exact_to_one_quantisation_step(fmt, channels, mono):
    af = conv.AudioFormat(16000, channels, fmt)
    data = conv.mono_to_audio_bytes(mono, fmt, channels)
    assert len(data) == mono.size * channels * np.dtype(PCM[fmt][0]).itemsize
    back = conv.audio_bytes_to_mono(data, af)
    step = 0.0 if fmt == "F32LE" else 1.5 / PCM[fmt][1]     # rounding plus the write/read scale difference
    assert back.shape == mono.shape
    assert np.abs(back.astype(np.float64) - mono).max(initial=0.0) <= step + 4e-7   # + float32 rounding


@settings(max_examples=50)
@given(fmt=st.sampled_from(sorted(PCM)), channels=channel_counts, extra=st.integers(1, 31), frames=st.integers(0, 20))
def test_bytes_that_are_not_whole_frames_are_a_conversion_error(fmt, channels, extra, frames):
    frame = np.dtype(PCM[fmt][0]).itemsize * channels
    assume(extra % frame)
    with pytest.raises(conv.ConversionError, match="whole number"):
        conv.audio_bytes_to_mono(b"\x00" * (frames * frame + extra), conv.AudioFormat(16000, channels, fmt))


@settings(max_examples=50)
@given(channels=st.integers(-3, 16), rate=st.integers(0, 96000), fmt=st.sampled_from(sorted(PCM) + ["S24LE", "F64"]))
def test_audio_info_is_accepted_exactly_when_format_channels_and_rate_are_usable(channels, rate, fmt):
    usable = fmt in PCM and channels >= 1 and rate >= 8000
    if usable:
        assert conv.audio_format_from_info(_info(fmt, channels, rate)) == conv.AudioFormat(rate, channels, fmt)
    else:
        with pytest.raises(conv.ConversionError):
            conv.audio_format_from_info(_info(fmt, channels, rate))


# ---------------------------------------------------------------------------------- time
@settings(max_examples=100)
@given(sec=st.integers(0, 2**31 - 1), nanosec=st.integers(0, 10**9 - 1))
def test_stamp_to_seconds_and_back_is_exact_to_the_float_resolution(sec, nanosec):
    t = conv.stamp_to_seconds(Time(sec=sec, nanosec=nanosec))
    back = conv.seconds_to_stamp(t)
    assert 0 <= back.nanosec < 10**9
    resolution_ns = math.ulp(t) * 1e9 + 1           # ~240 ns for today's epoch seconds in a float
    assert abs((back.sec - sec) * 10**9 + (back.nanosec - nanosec)) <= resolution_ns


@settings(max_examples=100)
@given(a=st.floats(0, 2.0**31, allow_nan=False), b=st.floats(0, 2.0**31, allow_nan=False))
def test_seconds_to_stamp_keeps_the_order_of_times(a, b):
    sa, sb = conv.seconds_to_stamp(a, SimpleNamespace), conv.seconds_to_stamp(b, SimpleNamespace)
    assert 0 <= sa.nanosec < 10**9 and 0 <= sb.nanosec < 10**9
    if a <= b:
        assert (sa.sec, sa.nanosec) <= (sb.sec, sb.nanosec)


# ---------------------------------------------------------------------------------- our messages
f32 = st.floats(-1e6, 1e6, width=32, allow_nan=False)
unit = st.floats(-1.0, 1.0, width=32)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
u16 = st.integers(0, 2**16 - 1)
boxes = st.tuples(u16, u16, u16, u16)
stamps = st.builds(lambda s, n: s + n * 1e-9, st.integers(0, 2**31 - 1), st.integers(0, 10**9 - 1))
vectors = st.lists(f32, max_size=16).map(lambda v: np.array(v, np.float32))


def _plain(msg):
    """Message -> nested dicts/lists, NaN as a string (NaN != NaN would fail any == of two messages)."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: _plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (list, tuple, array.array, np.ndarray)):
        return [_plain(v) for v in msg]
    if isinstance(msg, float) and math.isnan(msg):
        return "nan"
    return msg


def _same_message(again, msg):
    """Equal field by field; the stamp to the resolution of the float seconds it went through."""
    a, b = _plain(again), _plain(msg)
    t = conv.stamp_to_seconds(msg.header.stamp)
    sa, sb = a["header"].pop("stamp"), b["header"].pop("stamp")
    assert abs((sa["sec"] - sb["sec"]) * 10**9 + sa["nanosec"] - sb["nanosec"]) <= math.ulp(t) * 1e9 + 1
    assert a == b


def _header(t, frame_id):
    h = Header(frame_id=frame_id)
    h.stamp = conv.seconds_to_stamp(t)
    return h


face_results = st.builds(
    FaceResult, track_id=names, box=boxes, detection_confidence=unit, track_age=st.integers(0, 2**32 - 1),
    embedding=vectors, expression_probabilities=st.lists(unit, min_size=7, max_size=7).map(np.float32), valence=unit,
    arousal=unit, mouth_activity=st.floats(0, 100, width=32) | st.just(float("nan")))


def _same_face(a: FaceResult, b: FaceResult):
    assert (a.track_id, tuple(a.box), a.track_age) == (b.track_id, tuple(b.box), b.track_age)
    for name in ("detection_confidence", "valence", "arousal", "mouth_activity"):
        np.testing.assert_array_equal(np.float32(getattr(a, name)), np.float32(getattr(b, name)), err_msg=name)
    np.testing.assert_array_equal(np.asarray(a.embedding, np.float32), b.embedding)
    np.testing.assert_array_equal(np.asarray(a.expression_probabilities, np.float32), b.expression_probabilities)


@settings(max_examples=50)
@given(faces=st.lists(face_results, max_size=4), t=stamps, frame_id=names, model_id=names,
       size=st.tuples(st.integers(1, 8192), st.integers(1, 8192)), processing=st.floats(0, 10, width=32))
def test_faces_to_face_embedding_array_and_back(faces, t, frame_id, model_id, size, processing):
    header = _header(t, frame_id)
    msg = conv.face_array_to_msg(faces, header, model_id, size, processing)
    assert (msg.image_width, msg.image_height) == size and msg.processing_time == np.float32(processing)
    frame = conv.face_frame_from_msg(msg)
    assert (frame.stamp, frame.frame_id, frame.model_id, frame.image_width) == \
        (conv.stamp_to_seconds(header.stamp), frame_id, model_id, size[0])
    assert len(frame.faces) == len(faces)
    for a, b in zip(faces, frame.faces):
        _same_face(a, b)
    # and the other way: message -> FaceFrame -> message is the same message
    again = conv.face_array_to_msg(frame.faces, msg.header, frame.model_id, (frame.image_width, msg.image_height),
                                   msg.processing_time)
    _same_message(again, msg)


audio_results = st.builds(AudioResult, end_time=stamps, embedding=vectors, voice_probability=st.floats(0, 1, width=32),
                          loudness_dbfs=st.floats(-200, 0, width=32))


@settings(max_examples=50)
@given(result=audio_results, model_id=names, window=st.floats(0.015625, 10, width=32), frame_id=names)
def test_audio_result_to_audio_embedding_and_back(result, model_id, window, frame_id):
    msg = conv.audio_embedding_to_msg(result, model_id, window, frame_id)
    assert msg.header.frame_id == frame_id and msg.window_duration == np.float32(window)
    frame = conv.audio_frame_from_msg(msg)
    assert abs(frame.stamp - result.end_time) <= max(1e-9, 2 * math.ulp(result.end_time))
    assert frame.model_id == model_id
    np.testing.assert_array_equal(frame.embedding, np.asarray(result.embedding, np.float32))
    assert (frame.voice_probability, frame.loudness_dbfs) == \
        (np.float32(result.voice_probability), np.float32(result.loudness_dbfs))
    again = conv.audio_embedding_to_msg(AudioResult(frame.stamp, frame.embedding, frame.voice_probability,
                                                    frame.loudness_dbfs), frame.model_id, msg.window_duration,
                                        msg.header.frame_id)
    _same_message(again, msg)


@st.composite
def people(draw):
    face = draw(st.booleans())
    return PersonAffect(track_id=draw(names), valence=draw(unit), arousal=draw(unit),
                        confidence=draw(st.floats(0, 1, width=32)), face=face, voice=draw(st.booleans()),
                        box=draw(boxes) if face else None)


@settings(max_examples=50)
@given(persons=st.lists(people(), max_size=5), t=stamps, frame_id=names,
       mode=st.sampled_from(["prior", "gru"]), model_id=names)
def test_fusion_step_to_affect_array_and_back(persons, t, frame_id, mode, model_id):
    msg = conv.affect_array_to_msg(FusionStep(t, frame_id, persons), mode, model_id)
    back = conv.affect_from_msg(msg)
    assert (back.mode, back.model_id, back.step.frame_id) == (mode, model_id, frame_id)
    assert abs(back.step.time - t) <= max(1e-9, 2 * math.ulp(t))
    assert len(back.step.people) == len(persons)
    for a, b in zip(persons, back.step.people):
        assert (a.track_id, a.face, a.voice, a.box) == (b.track_id, b.face, b.voice,
                                                        None if b.box is None else tuple(b.box))
        assert (np.float32(a.valence), np.float32(a.arousal), np.float32(a.confidence)) == \
            (b.valence, b.arousal, b.confidence)
    _same_message(conv.affect_array_to_msg(back.step, back.mode, back.model_id), msg)


@settings(max_examples=50)
@given(persons=st.lists(people(), max_size=5), t=stamps,
       expression=st.sampled_from(sorted(conv.HRI_EXPRESSIONS) + ["", "contempt"]))
def test_hri_expressions_exist_exactly_for_tracked_faces(persons, t, expression):
    for p in persons:
        p.expression = expression
    header = _header(t, "cam")
    out = conv.hri_expression_msgs(FusionStep(t, "cam", persons), header, SimpleNamespace)
    assert set(out) == {p.track_id for p in persons if p.track_id and p.face}
    for p in persons:
        if p.track_id in out and p.face:
            msg = out[p.track_id]
            assert msg.expression == conv.HRI_EXPRESSIONS.get(expression, "") and msg.header is header


@settings(max_examples=100)
@given(x=st.floats(-10, 10), y=st.floats(-10, 10), offset=st.floats(-180, 180), t=stamps)
def test_sound_azimuth_is_the_bearing_plus_offset_wrapped_to_plus_minus_180(x, y, offset, t):
    msg = SimpleNamespace(header=SimpleNamespace(stamp=conv.seconds_to_stamp(t, SimpleNamespace)),
                          pose=SimpleNamespace(position=SimpleNamespace(x=x, y=y, z=0.0)))
    if x == 0.0 and y == 0.0:
        with pytest.raises(conv.ConversionError, match="no direction"):
            conv.sound_azimuth_from_msg(msg, offset)
        return
    stamp, az = conv.sound_azimuth_from_msg(msg, offset)
    assert -180.0 <= az <= 180.0
    diff = (az - math.degrees(math.atan2(y, x)) - offset) % 360.0
    assert min(diff, 360.0 - diff) < 1e-9
