"""A video (+ optional separate audio, + optional annotations) -> a rosbag2 file that looks like a
robot's recording: JPEG sensor_msgs/CompressedImage (or raw Image), AudioDataStamped chunks stamped
like ROS 2 audio_capture (capture time of the first sample), AudioInfo once, and the annotations as
AffectArray (mode "annotation") on their own topic. Written with `rosbags`: no ROS needed.

JPEG by default: raw rgb8 frames made the demo's 8 s sample clip a 111 MB bag (4.97 MB as JPEG at
quality 90) and 5 s of 720p at 30 fps 415 MB (19.4 MB); the face pipeline decodes either (runtime/handlers.py)."""
from __future__ import annotations

import pathlib

import numpy as np

from ..recordings.annotations import Annotations, check_time_base
from .bags import bag_bytes, claim_output, typestore, write_bag
from ..recordings.media import T0, MediaError, audio_track, video_frames

JPEG_QUALITY = 90          # cv2's IMWRITE_JPEG_QUALITY, 1..100 (OpenCV's default 95; image_transport's 80)
JPEG_QUALITIES = (1, 100)

TOPICS = {"image": "/image", "compressed": "/image/compressed", "audio": "/audio_stamped",
          "info": "/audio_info", "annotations": "/annotations"}
ANNOTATION_MODE = "annotation"


class _Msgs:
    """rosbags message constructors for the few types we write."""

    def __init__(self):
        self.store = typestore()
        self.t = self.store.types

    def header(self, t, frame_id):
        total = int(round(t * 1e9))
        stamp = self.t["builtin_interfaces/msg/Time"](sec=total // 1_000_000_000, nanosec=total % 1_000_000_000)
        return self.t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def image(self, rgb, t):
        h, w = rgb.shape[:2]
        return self.t["sensor_msgs/msg/Image"](header=self.header(t, "camera"), height=h, width=w, encoding="rgb8",
                                               is_bigendian=0, step=w * 3, data=np.ascontiguousarray(rgb).reshape(-1))

    def compressed(self, rgb, t, quality=JPEG_QUALITY):
        import cv2

        ok, jpeg = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        return self.t["sensor_msgs/msg/CompressedImage"](header=self.header(t, "camera"), format="jpeg",
                                                         data=jpeg.reshape(-1))

    def info(self, rate, channels):
        return self.t["audio_common_msgs/msg/AudioInfo"](channels=channels, sample_rate=rate, sample_format="S16LE",
                                                         bitrate=0, coding_format="wave")

    def chunk(self, pcm: np.ndarray, t):
        data = self.t["audio_common_msgs/msg/AudioData"](data=np.frombuffer(pcm.astype("<i2").tobytes(), np.uint8))
        return self.t["audio_common_msgs/msg/AudioDataStamped"](header=self.header(t, "microphone"), audio=data)

    def annotation(self, t, people):
        roi = self.t["sensor_msgs/msg/RegionOfInterest"]
        affect = [self.t["emo_perception_msgs/msg/Affect"](track_id=p, valence=float(v), arousal=float(a),
                                                           confidence=1.0, modalities=0,
                                                           box=roi(x_offset=0, y_offset=0, height=0, width=0,
                                                                   do_rectify=False)) for p, v, a in people]
        return self.t["emo_perception_msgs/msg/AffectArray"](header=self.header(t, ""), mode=ANNOTATION_MODE,
                                                             model_id="", people=affect)


def media_to_bag(video, out, audio=None, annotations: Annotations | None = None, compressed: bool = True,
                 storage: str = "sqlite3", chunk: int = 1024, t0: float = T0, max_fps: float | None = None,
                 quality: int = JPEG_QUALITY, overwrite: bool = False) -> dict:
    """Write the bag (JPEG CompressedImage at `quality`, or raw rgb8 Image with compressed=False);
    returns a summary (counts, duration, image format, size on disk, what was missing). An existing
    `out` is an error unless `overwrite` (then only a bag folder is replaced)."""
    if not JPEG_QUALITIES[0] <= quality <= JPEG_QUALITIES[1]:
        raise ValueError(f"JPEG quality {quality}; allowed: {JPEG_QUALITIES[0]}..{JPEG_QUALITIES[1]}")
    if chunk < 1:
        raise ValueError(f"audio chunk of {chunk} samples; allowed: >= 1")
    claim_output(out, overwrite, check_only=True)     # before decoding: a long clip would fail only at the end
    m = _Msgs()
    records, summary = [], {"images": 0, "audio_chunks": 0, "annotations": 0, "audio_source": None,
                            "image_format": f"jpeg quality {quality}" if compressed else "raw rgb8"}
    last_t = 0.0
    topic, kind = (TOPICS["compressed"], "sensor_msgs/msg/CompressedImage") if compressed else \
        (TOPICS["image"], "sensor_msgs/msg/Image")
    for t, rgb in video_frames(video, max_fps):
        msg = m.compressed(rgb, t0 + t, quality) if compressed else m.image(rgb, t0 + t)
        records.append((topic, kind, int((t0 + t) * 1e9), msg))
        summary["images"] += 1
        last_t = t
    if not summary["images"]:
        raise MediaError(f"media file '{video}' has no decodable video frames")
    track = audio_track(audio) if audio else audio_track(video)
    if track is not None:
        summary["audio_source"] = str(audio or video)
        channels = track.samples.shape[1]
        records.append((TOPICS["info"], "audio_common_msgs/msg/AudioInfo", int(t0 * 1e9), m.info(track.rate, channels)))
        for k in range(0, len(track.samples) - chunk + 1, chunk):
            start = t0 + k / track.rate           # audio_capture: the capture time of the first sample
            arrival = t0 + (k + chunk) / track.rate
            records.append((TOPICS["audio"], "audio_common_msgs/msg/AudioDataStamped", int(arrival * 1e9),
                            m.chunk(track.samples[k:k + chunk], start)))
            summary["audio_chunks"] += 1
        last_t = max(last_t, len(track.samples) / track.rate)
    if annotations is not None:
        check_time_base(annotations, last_t)
        by_time = {}
        for person, s in annotations.series.items():
            for t, v, a in zip(s["time"], s["valence"], s["arousal"]):
                by_time.setdefault(round(float(t), 6), []).append((person, v, a))
        for t, people in sorted(by_time.items()):
            records.append((TOPICS["annotations"], "emo_perception_msgs/msg/AffectArray", int((t0 + t) * 1e9),
                            m.annotation(t0 + t, people)))
            summary["annotations"] += 1
    records.sort(key=lambda r: r[2])
    claim_output(out, overwrite)
    write_bag(out, records, storage)
    summary.update(duration_s=round(last_t, 3), bag=str(out), storage=storage, image_topic=topic,
                   size_bytes=bag_bytes(pathlib.Path(out)))
    return summary
