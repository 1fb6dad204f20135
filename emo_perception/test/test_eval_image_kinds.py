"""A bag with both raw and compressed images (image_transport records both): the offline evaluation
takes each frame once, from the kind the face node subscribes to (use_compressed), as a live run does."""
import dataclasses

import cv2
from sensor_msgs.msg import CompressedImage

from emo_perception import conversions
from emo_perception.eval.bags import write_bag
from emo_perception.eval.evaluate import run_offline
from emo_perception.runtime import load_configs
from media import demo_frame

FRAMES, FPS = 6, 10.0


def _bag_with_both_image_kinds(path):
    frame, recs = demo_frame(), []
    for k in range(FRAMES):
        stamp = conversions.seconds_to_stamp(100.0 + k / FPS)
        raw = conversions.rgb_to_image(frame)
        raw.header.stamp = stamp
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        jpeg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", bgr)[1].tobytes())
        jpeg.header.stamp = stamp
        recs += [("/image", "sensor_msgs/msg/Image", int(k / FPS * 1e9), raw),
                 ("/image/compressed", "sensor_msgs/msg/CompressedImage", int(k / FPS * 1e9) + 1, jpeg)]
    write_bag(path, recs)
    return path


def test_raw_and_compressed_images_are_not_both_processed(tmp_path):
    bag = _bag_with_both_image_kinds(tmp_path / "both")
    configs = load_configs()
    for use_compressed in (False, True):
        cfgs = dict(configs, face_embedding_node=dataclasses.replace(configs["face_embedding_node"],
                                                                     use_compressed=use_compressed))
        result = run_offline(bag, cfgs)
        processed = result.counts.get("frames_out_of_order", 0)
        assert processed == 0, result.problems          # the second copy of each frame would be out of order
        assert [r for r, _ in result.problems] == ["images_ignored"]
        assert ("compressed" if use_compressed else "raw") + " ones are used" in result.problems[0][1]
