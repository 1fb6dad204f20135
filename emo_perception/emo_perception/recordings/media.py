"""Video and audio files decoded with PyAV (FFmpeg inside its wheel: every common container and
codec, video and audio from one file, no system FFmpeg needed; chosen over OpenCV's VideoCapture,
which reads no audio, and over torchaudio/soundfile, which read no video)."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

# The stamp (s) of a recording's first instant in the bags we write and in the features training
# extracts: annotations' time 0 maps here. Not 0, because a zero stamp means 'unstamped' in ROS.
T0 = 1000.0


class MediaError(ValueError):
    """A media file that cannot be used; the text names the file and what is wrong."""


@dataclass
class Audio:
    samples: np.ndarray     # (N, channels) int16
    rate: int


def _open(path):
    import av

    path = pathlib.Path(path)
    if not path.is_file():
        raise MediaError(f"media file '{path}' does not exist")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise MediaError(f"media file '{path}' cannot be opened: {err}") from err


def video_frames(path, max_fps: float | None = None):
    """(seconds from the start, (H, W, 3) uint8 RGB) per frame, in order; at most `max_fps`."""
    import av

    container = _open(path)
    try:
        if not container.streams.video:
            raise MediaError(f"media file '{path}' has no video stream")
        stream = container.streams.video[0]
        last = -np.inf
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if max_fps and t - last < 1.0 / max_fps - 1e-6:
                    continue
                last = t
                yield t, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as err:
            raise MediaError(f"media file '{path}': video decoding failed after {max(last, 0):.2f} s: {err}") from err
    finally:
        container.close()


def audio_track(path, rate: int | None = None) -> Audio | None:
    """The first audio stream as interleaved S16 (resampled to `rate` if given); None without one."""
    import av

    container = _open(path)
    try:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels or 1
        out_rate = rate or stream.codec_context.sample_rate
        layout = "mono" if channels == 1 else "stereo"
        resampler = av.AudioResampler(format="s16", layout=layout, rate=out_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for f in resampler.resample(frame):
                    chunks.append(f.to_ndarray().reshape(-1, 1 if layout == "mono" else 2))
            for f in resampler.resample(None):
                chunks.append(f.to_ndarray().reshape(-1, 1 if layout == "mono" else 2))
        except av.error.FFmpegError as err:
            raise MediaError(f"media file '{path}': audio decoding failed: {err}") from err
        if not chunks:
            return None
        return Audio(np.concatenate(chunks).astype(np.int16), out_rate)
    finally:
        container.close()


def write_clip(path, frames, fps: float, audio: Audio | None = None, crf: int = 20):
    """An H.264 (+ AAC) MP4 from RGB frames (and audio): test clips and the demo's sample clip."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=int(round(fps)))
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        v.options = {"crf": str(crf)}
        a = None
        if audio is not None:
            a = out.add_stream("aac", rate=audio.rate)
            a.layout = "mono" if audio.samples.shape[1] == 1 else "stereo"
        for img in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))
        if a is not None:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio.samples.T if audio.samples.shape[1] > 1
                                                                    else audio.samples.reshape(1, -1)),
                                               format="s16p" if audio.samples.shape[1] > 1 else "s16",
                                               layout=a.layout.name)
            frame.sample_rate = audio.rate
            out.mux(a.encode(frame))
            out.mux(a.encode(None))
