"""emo_bag: rosbag2 files without rosbag2 (sqlite3 or mcap, through `rosbags`).

    emo_bag from-media clip.mp4 --out session1 [--audio voice.wav] [--annotations gold.csv] [--compressed]
    emo_bag info session1
    emo_bag play session1 [--rate 2] [--start 5] [--loop] [--clock] [--topics /image ...] [--remap /image:=/camera/image_raw]
    emo_bag strip session1 --out session1_private     # without raw images and audio (privacy)

`play` is for machines without `ros2 bag play`; on a robot `ros2 bag play --clock` does the same.
"""
from __future__ import annotations

import argparse
import json
import sys


def _remaps(items):
    out = {}
    for item in items or []:
        if ":=" not in item:
            raise ValueError(f"--remap '{item}': expected FROM:=TO")
        a, b = item.split(":=", 1)
        out[a] = b
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emo_bag", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    fm = sub.add_parser("from-media", help="video (+ audio, + annotations) -> bag")
    fm.add_argument("video")
    fm.add_argument("--out", required=True, help="bag folder to create")
    fm.add_argument("--audio", help="separate audio file (else the video's own audio track)")
    fm.add_argument("--annotations", nargs="+", help="CSV time,valence,arousal[,person] or RECOLA ARFF file(s)")
    fm.add_argument("--compressed", action="store_true", help="JPEG CompressedImage instead of raw Image")
    fm.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    fm.add_argument("--chunk", type=int, default=1024, help="audio samples per AudioDataStamped")
    fm.add_argument("--max-fps", type=float, help="keep at most this many frames per second")
    fm.add_argument("--params-file", help="refuse if its privacy_mode is on (raw media would be written)")
    strip = sub.add_parser("strip", help="copy a bag without raw images and audio (privacy)")
    strip.add_argument("bag")
    strip.add_argument("--out", required=True)
    strip.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    info = sub.add_parser("info", help="topics, types, counts, durations, rates, gaps")
    info.add_argument("bag")
    play = sub.add_parser("play", help="publish at recorded timing")
    play.add_argument("bag")
    play.add_argument("--rate", type=float, default=1.0)
    play.add_argument("--start", type=float, default=0.0, help="seconds into the bag")
    play.add_argument("--loop", action="store_true")
    play.add_argument("--clock", action="store_true", help="publish /clock (use_sim_time)")
    play.add_argument("--topics", nargs="+")
    play.add_argument("--remap", nargs="+", help="FROM:=TO")
    a = ap.parse_args(argv)
    from ..recordings.annotations import AnnotationError, read_annotations
    from ..eval.bags import BagError, bag_info
    from ..recordings.media import MediaError
    from ..runtime import ConfigError

    try:
        if a.cmd == "strip":
            from ..eval.bags import strip_raw_media
            print(json.dumps(strip_raw_media(a.bag, a.out, a.storage)))
        elif a.cmd == "from-media":
            from ..eval.from_media import media_to_bag
            _refuse_in_privacy_mode(a.params_file)
            ann = read_annotations(*a.annotations) if a.annotations else None
            print(json.dumps(media_to_bag(a.video, a.out, a.audio, ann, a.compressed, a.storage, a.chunk,
                                          max_fps=a.max_fps)))
        elif a.cmd == "info":
            print(json.dumps(bag_info(a.bag), indent=2))
        else:
            return _play(a)
    except (AnnotationError, BagError, MediaError, ValueError, FileExistsError, ConfigError) as err:
        print(f"emo_bag: {err}", file=sys.stderr)
        return 1
    return 0


def _refuse_in_privacy_mode(params_file):
    from ..runtime import load_configs

    if params_file and any(c.privacy_mode for c in load_configs(params_file).values()):
        raise ValueError(f"privacy_mode is on in '{params_file}': from-media would write raw images and audio "
                         "into the bag; turn it off for this recording, or evaluate the video without a bag")


def _play(a):
    import rclpy

    from ..eval.play import Player

    rclpy.init()
    node = rclpy.create_node("emo_bag_play")
    try:
        player = Player(node, a.bag, a.topics, _remaps(a.remap), a.clock)
        print(json.dumps(player.play(a.rate, a.start, 0 if a.loop else 1)))
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
