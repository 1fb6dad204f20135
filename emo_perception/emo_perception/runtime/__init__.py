"""The ROS-free assembly layer: node configurations (dataclasses that mirror the YAML blocks) and the
builders that turn them into pipelines, used alike by the nodes and by offline tools.

    configs = load_configs("config/emo_perception.yaml")        # or a node's ROS parameters
    face = build_face_pipeline(configs["face_embedding_node"])
"""
from .build import build_audio_stream, build_face_pipeline, build_fusion_pipeline, load_node_model
from .config import NODE_CONFIGS, AudioConfig, FaceConfig, FusionConfig, NodeConfig
from .params import ConfigError
from .params_file import load_configs, load_node_config, load_params_file

__all__ = ["NODE_CONFIGS", "AudioConfig", "ConfigError", "FaceConfig", "FusionConfig", "NodeConfig",
           "build_audio_stream", "build_face_pipeline", "build_fusion_pipeline", "load_configs",
           "load_node_config", "load_node_model", "load_params_file"]
