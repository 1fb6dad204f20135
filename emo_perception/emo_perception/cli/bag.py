"""emo_bag: rosbag2 files without rosbag2 (sqlite3 or mcap, through `rosbags`).

    emo_bag from-media clip.mp4 --out session1 [--audio voice.wav] [--annotations gold.csv] [--raw]
    emo_bag info session1
    emo_bag play session1 [--rate 2] [--start 5] [--loop] [--clock] [--topics /image ...]
                          [--wait-for-subscribers 10]
                          [--remap /image:=/camera/image_raw]
    emo_bag strip session1 --out session1_private     # without raw images and audio (privacy)

`from-media` writes JPEG CompressedImage on /image/compressed by default (the face node reads it with
use_compressed: true; emo_eval --live sets that); --raw writes rgb8 Image on /image (about 20x larger).
`play` is for machines without `ros2 bag play`; on a robot `ros2 bag play --clock` does the same.
"""
from __future__ import annotations

import argparse
import json
import sys

STORAGES = ("sqlite3", "mcap")


def _remaps(items):
    out = {}
    for item in items or []:
        if ":=" not in item:
            raise ValueError(f"--remap '{item}': expected FROM:=TO")
        a, b = item.split(":=", 1)
        out[a] = b
    return out


def parser() -> argparse.ArgumentParser:
    from ..eval.from_media import JPEG_QUALITY

    ap = argparse.ArgumentParser(prog="emo_bag", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND",
                            help="from-media, info, play or strip (emo_bag COMMAND --help for its options)")
    fm = sub.add_parser("from-media", help="video (+ audio, + annotations) -> bag",
                        description="A video (+ audio, + annotations) -> a rosbag2 folder recorded the way a robot "
                                    "records: camera images, audio_capture-style audio chunks, AudioInfo, annotations.")
    fm.add_argument("video", help="the video file (mp4, mkv, webm, ...: anything FFmpeg decodes)")
    fm.add_argument("--out", required=True, help="bag folder to create (an existing one: --overwrite)")
    fm.add_argument("--overwrite", action="store_true", help="replace --out if it is a bag folder")
    fm.add_argument("--audio", help="separate audio file (else the video's own audio track)")
    fm.add_argument("--annotations", nargs="+", help="CSV time,valence,arousal[,person] or RECOLA ARFF file(s)")
    fm.add_argument("--raw", action="store_true",
                    help="raw rgb8 sensor_msgs/Image on /image instead of JPEG CompressedImage on /image/compressed")
    fm.add_argument("--quality", type=int, help=f"JPEG quality 1..100 (default {JPEG_QUALITY}; not with --raw)")
    fm.add_argument("--storage", choices=STORAGES, default="sqlite3", help="rosbag2 storage (default: %(default)s)")
    fm.add_argument("--chunk", type=int, default=1024, help="audio samples per AudioDataStamped (default: %(default)s)")
    fm.add_argument("--max-fps", type=float, help="keep at most this many frames per second (default: every frame)")
    fm.add_argument("--params-file", help="refuse if its privacy_mode is on (raw media would be written)")
    strip = sub.add_parser("strip", help="copy a bag without raw images and audio (privacy)",
                           description="Copy a bag without its camera images and microphone audio (privacy).")
    strip.add_argument("bag", help="the bag folder to copy")
    strip.add_argument("--out", required=True,
                       help="bag folder to create, without raw media (an existing one: --overwrite)")
    strip.add_argument("--overwrite", action="store_true", help="replace --out if it is a bag folder")
    strip.add_argument("--storage", choices=STORAGES, default="sqlite3", help="rosbag2 storage (default: %(default)s)")
    info = sub.add_parser("info", help="topics, types, counts, durations, rates, gaps",
                          description="Topics, types, counts, durations, rates and the longest gap of a bag.")
    info.add_argument("bag", help="the bag folder")
    play = sub.add_parser("play", help="publish at recorded timing",
                          description="Publish a bag at its recorded timing (for machines without ros2 bag play).")
    play.add_argument("bag", help="the bag folder")
    play.add_argument("--rate", type=float, default=1.0,
                      help="playback speed factor (default: %(default)s = real time)")
    play.add_argument("--start", type=float, default=0.0, help="seconds into the bag (default: %(default)s)")
    play.add_argument("--loop", action="store_true", help="play again from the start until interrupted (Ctrl-C)")
    play.add_argument("--clock", action="store_true", help="publish /clock (use_sim_time)")
    play.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these recorded topics (default: all)")
    play.add_argument("--remap", nargs="+", metavar="FROM:=TO", help="publish recorded topic FROM on TO")
    play.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                      help="before the first message, wait up to SECONDS until every played topic has a subscriber "
                           "(discovery takes 1-3 s: without it, a logger started just before loses the first "
                           "messages); topics still without one are named on stderr (default: %(default)s)")
    return ap


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def main(argv=None):
    a = parser().parse_args(argv)
    from ..recordings.annotations import AnnotationError, read_annotations
    from ..eval.bags import BagError, bag_info
    from ..recordings.media import MediaError
    from ..runtime import ConfigError

    try:
        if a.cmd == "strip":
            from ..eval.bags import strip_raw_media
            print(json.dumps(strip_raw_media(a.bag, a.out, a.storage, a.overwrite)))
        elif a.cmd == "from-media":
            from ..eval.from_media import JPEG_QUALITY, media_to_bag
            if a.raw and a.quality is not None:
                raise ValueError("--quality has no effect with --raw (raw images are not compressed); give one of them")
            _refuse_in_privacy_mode(a.params_file)
            ann = read_annotations(*a.annotations) if a.annotations else None
            made = media_to_bag(a.video, a.out, a.audio, ann, not a.raw, a.storage, a.chunk, max_fps=a.max_fps,
                                quality=JPEG_QUALITY if a.quality is None else a.quality, overwrite=a.overwrite)
            print(json.dumps(made))
            print(f"emo_bag: wrote {made['bag']}: {_size(made['size_bytes'])}, {made['images']} images "
                  f"({made['image_format']}) on {made['image_topic']}, {made['audio_chunks']} audio chunks, "
                  f"{made['duration_s']:.1f} s", file=sys.stderr)
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
        if a.wait_for_subscribers > 0:
            missing = player.wait_for_subscribers(player.pubs, a.wait_for_subscribers)
            if missing:
                print(f"emo_bag: no subscriber after {a.wait_for_subscribers:g} s on {', '.join(missing)}; "
                      "playing anyway", file=sys.stderr)
        print(json.dumps(player.play(a.rate, a.start, 0 if a.loop else 1)))
    except KeyboardInterrupt:
        pass
    except RuntimeError:
        if rclpy.ok():
            raise
        # Ctrl-C shut the context down between two publishes (rcl: "publisher's context is invalid")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
