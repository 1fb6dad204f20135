"""Message <-> array conversion round trips for every encoding and sample format (no ROS graph)."""
import cv2
import numpy as np
import pytest
from audio_common_msgs.msg import AudioInfo
from sensor_msgs.msg import CompressedImage, Image
from skimage import data

from emo_perception import conversions as conv

RGB = np.ascontiguousarray(data.astronaut()[::4, ::4])   # real image, 128x128


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_round_trip_exactly(encoding):
    assert np.array_equal(conv.image_to_rgb(conv.rgb_to_image(RGB, encoding)), RGB)


@pytest.mark.parametrize("encoding", ["mono8", "mono16"])
def test_mono_encodings_round_trip_the_grey_value(encoding):
    grey = np.repeat(RGB[:, :, :1], 3, axis=2)
    assert np.array_equal(conv.image_to_rgb(conv.rgb_to_image(grey, encoding)), grey)


def test_step_padding_and_big_endian_mono16_are_honoured():
    h, w = 4, 5
    values = np.arange(h * w, dtype=np.uint16).reshape(h, w) * 1000
    padded = np.zeros((h, w * 2 + 6), np.uint8)
    padded[:, : w * 2] = values.astype(">u2").view(np.uint8).reshape(h, w * 2)
    msg = Image(height=h, width=w, encoding="mono16", is_bigendian=1, step=w * 2 + 6)
    msg.data = padded.tobytes()
    assert np.array_equal(conv.image_to_rgb(msg)[:, :, 0], (values >> 8).astype(np.uint8))


@pytest.mark.parametrize("encoding,cv_code", [("yuv422", cv2.COLOR_YUV2RGB_UYVY),
                                              ("yuv422_yuy2", cv2.COLOR_YUV2RGB_YUYV)])
def test_yuv422_matches_opencv(encoding, cv_code):
    rng = np.random.default_rng(0)
    packed = rng.integers(16, 236, (8, 16 * 2), dtype=np.uint8)
    msg = Image(height=8, width=16, encoding=encoding, step=32)
    msg.data = packed.tobytes()
    ours = conv.image_to_rgb(msg).astype(int)
    ref = cv2.cvtColor(packed.reshape(8, 16, 2), cv_code).astype(int)
    assert np.abs(ours - ref).max() <= 3   # both BT.601; rounding differs by a few levels


def test_unknown_encoding_names_the_supported_ones():
    msg = conv.rgb_to_image(RGB)
    msg.encoding = "bayer_rggb8"
    with pytest.raises(conv.ConversionError, match="bayer_rggb8.*supported: .*rgb8"):
        conv.image_to_rgb(msg)


def test_truncated_image_data_is_a_clear_error():
    msg = conv.rgb_to_image(RGB)
    msg.data = bytes(msg.data)[:1000]
    with pytest.raises(conv.ConversionError, match="expected"):
        conv.image_to_rgb(msg)


@pytest.mark.parametrize("ext,fmt,exact", [(".png", "png", True), (".jpg", "jpeg", False)])
def test_compressed_images_decode(ext, fmt, exact):
    ok, buf = cv2.imencode(ext, RGB[:, :, ::-1])
    msg = CompressedImage(format=fmt)
    msg.data = buf.tobytes()
    out = conv.compressed_image_to_rgb(msg)
    assert out.shape == RGB.shape
    diff = np.abs(out.astype(int) - RGB.astype(int)).mean()
    assert diff == 0 if exact else diff < 8


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed_images_decode_alike_where_opencv_cannot_decode_to_rgb(ext, monkeypatch):
    ok, buf = cv2.imencode(ext, RGB[:, :, ::-1])
    msg = CompressedImage(format=ext[1:], data=buf.tobytes())
    now = conv.compressed_image_to_rgb(msg)
    monkeypatch.delattr(cv2, "IMREAD_COLOR_RGB", raising=False)     # OpenCV before the flag: BGR + cvtColor
    assert np.array_equal(conv.compressed_image_to_rgb(msg), now) and now.flags["C_CONTIGUOUS"]


def test_corrupt_compressed_image_is_a_clear_error():
    with pytest.raises(conv.ConversionError, match="could not decode"):
        conv.compressed_image_to_rgb(CompressedImage(format="jpeg", data=b"not a jpeg"))


@pytest.mark.parametrize("fmt,tol", [("S16LE", 2 / 32767), ("S32LE", 1e-7), ("F32LE", 0), ("U8", 2 / 127)])
@pytest.mark.parametrize("channels", [1, 2])
def test_audio_sample_formats_round_trip(fmt, tol, channels):
    x = np.sin(np.linspace(0, 20, 1000)).astype(np.float32) * 0.9
    info = AudioInfo(channels=channels, sample_rate=16000, sample_format=fmt, coding_format="wave")
    af = conv.audio_format_from_info(info)
    y = conv.audio_bytes_to_mono(conv.mono_to_audio_bytes(x, fmt, channels), af)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tol + 1e-7


def test_mp3_audio_info_says_how_to_configure_audio_capture():
    with pytest.raises(conv.ConversionError, match="format:=wave"):
        conv.audio_format_from_info(AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE",
                                              coding_format="mp3"))


def test_partial_audio_frame_and_nan_samples_are_clear_errors():
    af = conv.AudioFormat(16000, 2, "S16LE")
    with pytest.raises(conv.ConversionError, match="whole number"):
        conv.audio_bytes_to_mono(b"\x00" * 6, af)
    with pytest.raises(conv.ConversionError, match="NaN"):
        conv.audio_bytes_to_mono(np.array([0.0, np.nan], "<f4").tobytes(), conv.AudioFormat(16000, 1, "F32LE"))
