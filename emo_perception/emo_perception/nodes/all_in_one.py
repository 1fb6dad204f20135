"""emo_perception_all: the three nodes in one process (one executor), for machines without
`ros2 launch` and for users who want a single process. Reads the same YAML as the launch file;
without --params-file it uses the package's config/emo_perception.yaml."""
from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from ..paths import default_params_file
from .audio_embedding_node import AudioEmbeddingNode
from .face_embedding_node import FaceEmbeddingNode
from .fusion_node import FusionNode


def main(args=None):
    argv = list(sys.argv if args is None else args)
    if "--params-file" not in argv:
        argv += (["--ros-args"] if "--ros-args" not in argv else []) + ["--params-file", str(default_params_file())]
    rclpy.init(args=argv)
    nodes = [FaceEmbeddingNode(), AudioEmbeddingNode(), FusionNode()]
    executor = SingleThreadedExecutor()
    code = 0
    try:
        for node in nodes:
            if not node.start():
                node.get_logger().fatal("could not start: configuration failed (see the error above)")
                code = 1
        if code == 0:
            for node in nodes:
                executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
