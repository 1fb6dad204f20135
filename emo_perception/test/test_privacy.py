"""Privacy mode: no raw image or audio bytes leave the nodes; bags can be stripped of raw media;
tools refuse to write raw media when the params file says privacy_mode."""
import time

import pytest
import yaml
from emo_perception_msgs.msg import FaceEmbeddingArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from emo_perception import conversions
from emo_perception.eval.bags import RAW_MEDIA_TYPES, bag_info
from emo_perception.cli import bag as emo_bag
from media import demo_frame
from node_harness import PARAMS, Harness, NodeProcess

RAW = set(RAW_MEDIA_TYPES)


@pytest.mark.ros
def test_privacy_mode_publishes_no_raw_image_or_audio():
    # a namespace of its own: nodes of these names from earlier tests can linger in the graph for a while
    procs = [NodeProcess("all_in_one", "-p", "privacy_mode:=true", "-p", "debug_image:=true", "-r", "__ns:=/private")]
    h = Harness()
    try:
        faces = h.collect(FaceEmbeddingArray, "/private/faces/embeddings")
        debug = h.collect(Image, "/private/faces/debug_image", 1)
        pub = h.node.create_publisher(Image, "/private/image", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "face node")
        frame = conversions.rgb_to_image(demo_frame())
        deadline = time.monotonic() + 30
        k = 0
        while len(faces) < 5 and time.monotonic() < deadline:
            frame.header.stamp = conversions.seconds_to_stamp(10.0 + k * 0.1)
            pub.publish(frame)
            k += 1
            time.sleep(0.1)
        time.sleep(0.5)
        ours = [n for n in h.node.get_node_names_and_namespaces() if n[1] == "/private"]
        published = {ty for name, ns in ours for _, types in h.node.get_publisher_names_and_types_by_node(name, ns)
                     for ty in types}
    finally:
        h.close()
        for p in procs:
            p.stop()
    assert len(faces) >= 5 and not debug                 # faces processed, no image out
    assert len(ours) == 3 and published and not (published & RAW), published
    assert "privacy_mode: faces/debug_image is not offered" in procs[0].log()


@pytest.mark.media
def test_strip_removes_raw_media_and_keeps_the_rest(tmp_path, capsys):
    from emo_perception.recordings.media import Audio, write_clip
    from media import speech_16k
    import numpy as np
    clip = tmp_path / "clip.mp4"
    write_clip(clip, [demo_frame()] * 10, 10, Audio((speech_16k(1.0) * 32767).astype(np.int16)[:, None], 16000))
    gold = tmp_path / "gold.csv"
    gold.write_text("time,valence,arousal\n0.0,0.1,0.1\n0.04,0.1,0.1\n")
    assert emo_bag.main(["from-media", str(clip), "--out", str(tmp_path / "raw"), "--annotations", str(gold)]) == 0
    assert emo_bag.main(["strip", str(tmp_path / "raw"), "--out", str(tmp_path / "private")]) == 0
    capsys.readouterr()
    kept = {s["type"] for s in bag_info(tmp_path / "private")["topics"].values()}
    assert kept and not (kept & RAW) and "emo_perception_msgs/msg/AffectArray" in kept
    private = tmp_path / "private.yaml"
    data = yaml.safe_load(PARAMS.read_text())
    data["/**/face_embedding_node"]["ros__parameters"]["privacy_mode"] = True
    private.write_text(yaml.safe_dump(data))
    assert emo_bag.main(["from-media", str(clip), "--out", str(tmp_path / "refused"),
                         "--params-file", str(private)]) == 1
    assert "privacy_mode is on" in capsys.readouterr().err and not (tmp_path / "refused").exists()
