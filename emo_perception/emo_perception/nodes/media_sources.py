"""Synthetic camera and microphone nodes that publish real media the way drivers do.

Camera: sensor_msgs/Image (rgb8 by default) at a fixed rate, stamped with the node clock.
Microphone: like ROS 2 audio_capture: AudioInfo once (transient-local) and AudioDataStamped chunks
of S16LE PCM, each stamped with the capture time of its first sample (audio_capture: GStreamer base
time + buffer PTS); `stamp_position="end"` stamps on publication instead, as some drivers do.
Used by the demo, the node tests and the end-to-end benchmark.
"""
from __future__ import annotations

import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from .. import conversions
from .node_support import INFO_QOS


class CameraSource:
    def __init__(self, node: Node, frames: list[np.ndarray], rate: float = 30.0, topic: str = "image",
                 encoding: str = "rgb8", frame_id: str = "camera", qos=qos_profile_sensor_data):
        self.node, self.frames, self.encoding, self.frame_id = node, frames, encoding, frame_id
        self.pub = node.create_publisher(Image, topic, qos)
        self.published = []          # stamps (sec, nanosec) of every published frame
        self._i = 0
        self.timer = node.create_timer(1.0 / rate, self.publish_next)

    def publish_next(self, stamp=None):
        msg = conversions.rgb_to_image(self.frames[self._i % len(self.frames)], self.encoding)
        msg.header.frame_id = self.frame_id
        msg.header.stamp = stamp or self.node.get_clock().now().to_msg()
        self._i += 1
        self.pub.publish(msg)
        self.published.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
        return msg


class MicrophoneSource:
    def __init__(self, node: Node, samples: np.ndarray, sample_rate: int = 16000, chunk: int = 1024,
                 channels: int = 1, topic_prefix: str = "", coding_format: str = "wave", loop: bool = True,
                 qos=qos_profile_sensor_data, stamp_position: str = "start"):
        self.node, self.samples, self.rate, self.chunk, self.channels = node, samples, sample_rate, chunk, channels
        self.loop, self.stamp_position = loop, stamp_position
        self.info_pub = node.create_publisher(AudioInfo, topic_prefix + "audio_info", INFO_QOS)
        self.pub = node.create_publisher(AudioDataStamped, topic_prefix + "audio_stamped", qos)
        self.info_pub.publish(AudioInfo(channels=channels, sample_rate=sample_rate, sample_format="S16LE",
                                        bitrate=0, coding_format=coding_format))
        self._pos = 0
        self.published = 0
        self.timer = node.create_timer(chunk / sample_rate, self.publish_next)

    def publish_next(self):
        if self._pos + self.chunk > len(self.samples):
            if not self.loop:
                return None
            self._pos = 0
        block = self.samples[self._pos:self._pos + self.chunk]
        self._pos += self.chunk
        msg = AudioDataStamped()
        msg.header.frame_id = "microphone"
        now = self.node.get_clock().now()
        if self.stamp_position == "start":   # the chunk's first sample was captured one chunk ago
            now = now - Duration(nanoseconds=int(self.chunk * 1e9 / self.rate))
        msg.header.stamp = now.to_msg()
        msg.audio.data = conversions.mono_to_audio_bytes(block, "S16LE", self.channels)
        self.pub.publish(msg)
        self.published += 1
        return msg
