"""emo_perception_all: the three nodes in one process (one executor), for machines without
`ros2 launch` and for users who want a single process. Reads the same YAML as the launch file;
without --params-file it uses the package's config/emo_perception.yaml."""
from __future__ import annotations

from .audio_embedding_node import AudioEmbeddingNode
from .face_embedding_node import FaceEmbeddingNode
from .fusion_node import FusionNode
from .runner import main_for

NODES = (FaceEmbeddingNode, AudioEmbeddingNode, FusionNode)
main = main_for(*NODES, default_params=True, description=__doc__)

if __name__ == "__main__":
    raise SystemExit(main())
