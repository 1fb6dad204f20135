"""Time jumps through ROS: a recorded rosbag2 file played in a loop (stamps go back 10 s at every
loop) and one image stamped a day ahead. The nodes run in one process (emo_perception_all)."""
import time

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from emo_perception_msgs.msg import AffectArray
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from bad_input_cases import covers
from emo_perception import conversions
from emo_perception.eval.bags import read_raw, write_bag
from emo_perception.nodes.node_support import INFO_QOS
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros

TYPES = {"sensor_msgs/msg/Image": Image, "audio_common_msgs/msg/AudioDataStamped": AudioDataStamped,
         "audio_common_msgs/msg/AudioInfo": AudioInfo}
RELIABLE = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)


def _recording(seconds, t0, fps=10.0, chunk=1024):
    """(topic, type, receive ns, message): camera frames and audio_capture-style chunks."""
    frame, speech = demo_frame(), speech_16k(seconds)
    recs = [("/audio_info", "audio_common_msgs/msg/AudioInfo", 0,
             AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave"))]
    for k in range(int(seconds * fps)):
        msg = conversions.rgb_to_image(frame)
        msg.header.stamp = conversions.seconds_to_stamp(t0 + k / fps)
        recs.append(("/image", "sensor_msgs/msg/Image", int(k / fps * 1e9), msg))
    for k in range(len(speech) // chunk):
        msg = AudioDataStamped()
        msg.header.stamp = conversions.seconds_to_stamp(t0 + k * chunk / 16000)
        msg.audio.data = conversions.mono_to_audio_bytes(speech[k * chunk:(k + 1) * chunk])
        recs.append(("/audio_stamped", "audio_common_msgs/msg/AudioDataStamped", int((k + 1) * chunk / 16000 * 1e9),
                     msg))
    return sorted(recs, key=lambda r: r[2])


NS = "/jumps"   # a namespace of its own: nodes from earlier tests can linger in the graph


def _start_all(h):
    proc = NodeProcess("all_in_one", "-p", "diagnostics_period:=0.5", "-r", f"__ns:={NS}")
    pubs = {"/image": h.node.create_publisher(Image, f"{NS}/image", qos_profile_sensor_data),
            "/audio_stamped": h.node.create_publisher(AudioDataStamped, f"{NS}/audio_stamped", RELIABLE),
            "/audio_info": h.node.create_publisher(AudioInfo, f"{NS}/audio_info", INFO_QOS)}
    h.wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs.values())
               and h.node.count_publishers(f"{NS}/affect") > 0 and "fusion mode" in proc.log(),
               60, "emo_perception_all")
    time.sleep(0.5)
    return proc, pubs


@covers("bag_loop")
def test_a_bag_played_in_a_loop_three_times_gives_output_in_every_loop(tmp_path):
    bag = tmp_path / "session"
    write_bag(bag, _recording(10.0, 1000.0))
    recorded = [(topic, t_ns, deserialize_message(raw, TYPES[msgtype])) for topic, msgtype, t_ns, raw in read_raw(bag)]
    assert len(recorded) == 1 + 100 + 156     # AudioInfo, 10 s of frames at 10 Hz and of 64 ms chunks
    h = Harness()
    proc = None
    try:
        affect = h.collect(AffectArray, f"{NS}/affect")
        proc, pubs = _start_all(h)
        speed, per_loop = 4.0, []
        for loop in range(3):   # what `ros2 bag play --loop --rate 4` does: same stamps every loop
            before, start = len(affect), time.monotonic()
            for topic, t_ns, msg in recorded:
                time.sleep(max(0.0, start + t_ns * 1e-9 / speed - time.monotonic()))
                pubs[topic].publish(msg)
            time.sleep(0.6)
            per_loop.append([conversions.stamp_to_seconds(m.header.stamp) for m in affect[before:]])
    finally:
        h.close()
        if proc:
            proc.stop()
    log = proc.log()
    for loop, stamps in enumerate(per_loop):
        # a loop's 10 s give ~250 steps; the first second of each waits for the audio window again
        assert len(stamps) > 150, f"loop {loop}: {len(stamps)} AffectArray"
        assert 1000.0 <= min(stamps) and max(stamps) <= 1010.5, f"loop {loop} left the recording's time"
    assert log.count("image stamps jumped back") >= 2 and log.count("audio stamps jumped back") >= 2
    assert "fusion state reset" in log and "Traceback" not in log


@covers("day_ahead_image")
def test_one_image_stamped_a_day_ahead_costs_only_itself():
    h = Harness()
    proc = None
    try:
        affect = h.collect(AffectArray, f"{NS}/affect")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        proc, pubs = _start_all(h)
        recs = _recording(5.0, 2000.0)
        start = time.monotonic()
        for topic, _, t_ns, msg in recs:
            time.sleep(max(0.0, start + t_ns * 1e-9 - time.monotonic()))
            if topic == "/image" and conversions.stamp_to_seconds(msg.header.stamp) == 2002.0:
                msg.header.stamp = conversions.seconds_to_stamp(2002.0 + 86400)   # one clock glitch
            pubs[topic].publish(msg)
        time.sleep(1.0)
    finally:
        h.close()
        if proc:
            proc.stop()
    stamps = np.array([conversions.stamp_to_seconds(m.header.stamp) for m in affect])
    late = stamps[stamps > 2002.5]
    assert len(late) > 40 and late.max() < 2006, "affect stopped after the bad stamp"
    faces_after = [p for m in affect if 2002.5 < conversions.stamp_to_seconds(m.header.stamp) < 2006
                   for p in m.people if p.modalities & 1]
    assert len(faces_after) > 30, "faces were dropped after the bad stamp"
    def values(node):
        return [dict((kv.key, kv.value) for kv in s.values) for m in diags for s in m.status if s.name.endswith(node)]
    # the face node holds the frame until the next one shows it was one bad stamp: the fusion never sees it
    face, fusion = values("face_embedding_node"), values("fusion_node")
    assert int(face[-1].get("bad_stamps", 0)) == 1 and int(face[-1].get("time_jumps", 0)) == 0
    assert int(fusion[-1].get("bad_stamps", 0)) == 0 and int(fusion[-1].get("time_jumps", 0)) == 0
    assert "frame stamped 88402.000 s was one bad stamp" in proc.log() and "jumped" not in proc.log()
