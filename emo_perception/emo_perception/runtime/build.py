"""Builders: config -> the pipeline a node runs. Nodes and offline tools call these and nothing else,
so a bag evaluated offline runs exactly the code the robot runs."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, replace

from ..core.alignment import StreamAligner
from ..core.audio_pipeline import AudioStream, LogMelStatsEncoder, NetworkAudioEncoder
from ..core.face_detection import REGION_SIDE, letterbox_canvas, make_detector, region_detector
from ..core.face_pipeline import FacePipeline, release_model
from ..core.fusion_pipeline import FusionPipeline, GRUMode, PriorMode
from ..core.speaker import SpeakerAttribution, SpeakerConfig
from ..core.tracking import IouTracker
from ..core.voice_model import VOICE_MODEL_KIND, VoiceModelEncoder, voice_model_spec
from ..inference import ModelFileError, load_card, load_model
from ..paths import resolve_model
from .config import AudioConfig, BackendConfig, FaceConfig, FusionConfig
from .params import ConfigError

# The aligner may close a step once an audio stamp is within this share of a hop before it: the
# margin absorbs the audio clock's small corrections (core/audio_buffer.py).
AUDIO_HOP_MARGIN = 0.75


@dataclass(frozen=True)
class ModelRequest:
    """A model a node loads, with the largest batch it runs it at: the one source of the TensorRT
    profile shapes, used by the nodes (through the builders) and by emo_engine alike."""
    node: str
    card_path: pathlib.Path
    max_batch: int
    inputs: str          # what its inputs are made from: "face crops", "log-mel windows", "embeddings", "frames"
    image_size: tuple | None = None   # (width, height) an image model runs at (the detector's canvas)
    fp16_only: bool = False           # never INT8 under TensorRT (no calibration set of its inputs; unmeasured)


def face_request(cfg: FaceConfig) -> ModelRequest:
    return ModelRequest("face_embedding_node", resolve_model(cfg.face_model, "expression_teacher"), cfg.max_faces,
                        "face crops")


def detector_request(cfg: FaceConfig) -> ModelRequest | None:
    if cfg.detector != "blazeface" or cfg.face_source != "detector":
        return None   # OpenCV's own detectors, or faces from ROS4HRI
    return ModelRequest("face_embedding_node", resolve_model(cfg.detector_model, "blazeface_full_range"), 1, "frames",
                        letterbox_canvas(cfg.detector_max_width))


def audio_request(cfg: AudioConfig) -> ModelRequest | None:
    if cfg.audio_model in ("logmel_stats", "egemaps"):
        return None   # no network
    path = resolve_model(cfg.audio_model, cfg.audio_model)
    # a voice model card (core/voice_model.py) takes its own windows: no log-mel calibration set fits it
    inputs = "voice windows" if _card_kind(path) == VOICE_MODEL_KIND else "log-mel windows"
    return ModelRequest("audio_embedding_node", path, 1, inputs)


def _card_kind(path) -> str:
    try:
        return load_card(path).kind
    except ModelFileError:
        return ""     # load_model says what is wrong with it, with the fix


def fusion_request(cfg: FusionConfig) -> ModelRequest | None:
    if cfg.mode != "gru":
        return None
    return ModelRequest("fusion_node", resolve_model(cfg.fusion_model, "fusion_gru"), cfg.max_tracks, "embeddings")


def landmark_requests(cfg: FaceConfig) -> list[ModelRequest]:
    """The landmarker's two models (face_landmarks on): the landmark model batched over the frame's
    faces, the blendshape model one face at a time (MediaPipe exports it for batch 1)."""
    if not cfg.face_landmarks:
        return []
    return [ModelRequest("face_embedding_node", resolve_model("", "face_landmarks_detector"), cfg.max_faces,
                         "landmark crops", fp16_only=True),
            ModelRequest("face_embedding_node", resolve_model("", "face_blendshapes"), 1, "landmark points",
                         fp16_only=True)]


def model_requests(configs: dict) -> list[ModelRequest]:
    """Every model the configured nodes load."""
    reqs = [face_request(configs["face_embedding_node"]), detector_request(configs["face_embedding_node"]),
            region_detector_request(configs["face_embedding_node"]),
            *landmark_requests(configs["face_embedding_node"]),
            audio_request(configs["audio_embedding_node"]),
            fusion_request(configs["fusion_node"])]
    return [r for r in reqs if r is not None]


def backend_options(cfg: BackendConfig, max_batch: int, log=None, image_size=None, fp16_only: bool = False) -> dict:
    """load_model options for the node's backend; the TensorRT profile spans batch 1..max_batch (and
    is fixed at `image_size` for an image model) and its build progress goes to `log` (the node's
    logger, the tool's output)."""
    if cfg.backend == "tensorrt":
        # The detector (and the landmarker: fp16_only) is never INT8: emo_engine has no calibration set
        # of camera frames for it, and what INT8 does to its small-face recall is unmeasured. FP16 it is.
        int8_unfit = image_size or fp16_only
        precision = "fp16" if int8_unfit and cfg.tensorrt_precision == "int8" else cfg.tensorrt_precision
        return {"precision": precision, "batch_range": (1, 1, max_batch), "image_size": image_size,
                "cache_dir": cfg.engine_cache_dir or None, "force_engine_update": cfg.force_engine_update,
                "log": log}
    return {"device": cfg.device, "threads": cfg.threads}


def load_node_model(request: ModelRequest, cfg: BackendConfig, log=None, **extra):
    """A model on the configured backend; a missing backend library is a configuration error with the fix."""
    try:
        return load_model(request.card_path, cfg.backend,
                          **backend_options(cfg, request.max_batch, log, request.image_size, request.fp16_only),
                          **extra)
    except ImportError as err:
        fixes = {"tensorrt": "TensorRT's Python bindings (JetPack ships them) and cuda-python "
                             "(requirements/robot.txt)",
                 "torch": "torch", "onnxruntime": "onnxruntime (or onnxruntime-gpu)"}
        raise ConfigError(f"parameter 'backend' is '{cfg.backend}', but {err.name or err} cannot be imported; "
                          f"install {fixes.get(cfg.backend, cfg.backend)} or set backend: onnxruntime") from err


def build_detector(cfg: FaceConfig, log=None):
    """The configured detector; None with face_source 'hri' (ROS4HRI finds the faces)."""
    if cfg.face_source != "detector":
        return None
    request = detector_request(cfg)
    network = None
    if request is not None:
        # The torch backend runs our own checkpoints; the detector has none (it is converted from
        # tflite), so under backend torch it runs on ONNX Runtime.
        det_cfg = replace(cfg, backend="onnxruntime") if cfg.backend == "torch" else cfg
        network = load_node_model(request, det_cfg, log)
    return make_detector(cfg.detector, cfg.detector_model, network, max_width=cfg.detector_max_width,
                         min_face_px=cfg.min_face_size, threshold=cfg.detector_threshold)


def follows_faces(cfg: FaceConfig) -> bool:
    """Whether faces are followed by region detections on some frames (detect_every > 1 or detect_async)."""
    return cfg.detect_every > 1 or cfg.detect_async


def region_detector_request(cfg: FaceConfig) -> ModelRequest | None:
    """The detector network at the region size (detect_every > 1): its own TensorRT engine (fixed shapes);
    ONNX Runtime runs the full detector's session at any size."""
    full = detector_request(cfg)
    if full is None or not follows_faces(cfg):
        return None
    return replace(full, image_size=(REGION_SIDE, REGION_SIDE))


def build_region_detector(cfg: FaceConfig, detector, log=None):
    """What follows faces between full-frame detections (FacePipeline's region_detector), or None."""
    if detector is None or not follows_faces(cfg):
        return None
    request = region_detector_request(cfg)
    model = load_node_model(request, cfg, log) if request is not None and cfg.backend == "tensorrt" else None
    return region_detector(detector, model)


def build_landmarker(cfg: FaceConfig, log=None):
    """MediaPipe's face landmarker on the node's backend (face_landmarks on), else None. Under backend
    torch it runs on ONNX Runtime (converted from tflite: no torch checkpoint), as the detector does."""
    requests = landmark_requests(cfg)
    if not requests:
        return None
    from ..core.face_landmarks import FaceLandmarker

    run_cfg = replace(cfg, backend="onnxruntime") if cfg.backend == "torch" else cfg
    landmarks = load_node_model(requests[0], run_cfg, log)
    try:
        return FaceLandmarker(landmarks, load_node_model(requests[1], run_cfg, log))
    except (ValueError, ConfigError):
        release_model(landmarks)
        raise


def build_face_pipeline(cfg: FaceConfig, log=None) -> FacePipeline:
    model = load_node_model(face_request(cfg), cfg, log)
    if cfg.face_prior == "blendshapes":
        from ..core.face_model_io import face_model_io

        if face_model_io(model.card).gives_valence_arousal:
            release_model(model)
            raise ConfigError(f"parameter 'face_prior' is 'blendshapes', but the face model '{model.card.model_id}' "
                              "gives its own valence/arousal, which are used; allowed with it: 'circumplex'")
    detector = build_detector(cfg, log)
    tracker = IouTracker(min_iou=cfg.track_min_iou, max_age_s=cfg.track_max_age)
    pipeline = FacePipeline(detector, model, tracker, cfg.max_faces, cfg.time_jump_threshold,
                            detect_every=cfg.detect_every, region_detector=build_region_detector(cfg, detector, log),
                            landmarker=build_landmarker(cfg, log), lips_from_landmarks=cfg.lips_from_landmarks,
                            blendshape_prior=cfg.face_prior == "blendshapes", detect_async=cfg.detect_async)
    pipeline.warm_up()    # the first frame does not pay for the networks' first runs (the first estimate)
    return pipeline


def build_audio_encoder(cfg: AudioConfig, log=None):
    request = audio_request(cfg)
    if cfg.audio_model == "egemaps":
        from ..core.egemaps import EgemapsEncoder
        try:
            return EgemapsEncoder()
        except ImportError as err:
            raise ConfigError(f"parameter 'audio_model' is 'egemaps', but {err}") from err
    if request is None:
        return LogMelStatsEncoder()
    model = load_node_model(request, cfg, log)
    kind = model.card.kind
    if kind == VOICE_MODEL_KIND:
        return _voice_model_encoder(cfg, model)
    if kind != "audio_encoder":
        release_model(model)
        raise ConfigError(f"parameter 'audio_model' is '{cfg.audio_model}', a '{kind}' model card; allowed: "
                          f"'logmel_stats', 'egemaps', an audio_encoder card (emo_export) or a {VOICE_MODEL_KIND} "
                          "card (docs/voice_models.md)")
    return NetworkAudioEncoder(model)


def _voice_model_encoder(cfg: AudioConfig, model) -> VoiceModelEncoder:
    """A voice model card's encoder; its window and hop must be the node's (one line naming both)."""
    try:
        spec = voice_model_spec(model.card)
    except ValueError as err:
        release_model(model)
        raise ConfigError(f"parameter 'audio_model': {err}") from err   # err names the card and the key
    for name, card_key, card_value in (("window", "window_s", spec.window_s), ("hop", "hop_s", spec.hop_s)):
        if abs(getattr(cfg, name) - card_value) > 1e-9:
            release_model(model)
            raise ConfigError(f"parameter '{name}' is {getattr(cfg, name):g}; the voice model card "
                              f"'{cfg.audio_model}' is made for audio.{card_key} {card_value:g}: set {name}: "
                              f"{card_value:g}" + (" (and fusion_node's audio_hop to match)" if name == "hop" else ""))
    return VoiceModelEncoder(model, spec)


def build_audio_stream(cfg: AudioConfig, log=None) -> AudioStream:
    from ..core.vad import VoiceActivity

    return AudioStream(build_audio_encoder(cfg, log), VoiceActivity(), hop_s=cfg.hop, window_s=cfg.window,
                       tolerance_s=cfg.gap_tolerance, stamp_position=cfg.stamp_position,
                       jump_threshold_s=cfg.time_jump_threshold)


def _check_face_feature(mode: GRUMode):
    """A card whose face input this code cannot feed fails at start-up, not in the first step."""
    from ..core.face_landmarks import BLENDSHAPE_NAMES

    args = mode.model.card.model_args
    if mode.face_feature not in ("embedding", "blendshapes") or \
            mode.face_feature == "blendshapes" and args.get("face_dim") != len(BLENDSHAPE_NAMES):
        mode.release()
        raise ConfigError(f"parameter 'fusion_model' is '{mode.model.card.path}', whose face input is "
                          f"'{mode.face_feature}' of {args.get('face_dim')} values; allowed: a card of face_feature "
                          f"'embedding', or 'blendshapes' of {len(BLENDSHAPE_NAMES)} (emo_train fusion)")


def build_fusion_pipeline(cfg: FusionConfig, log=None) -> FusionPipeline:
    request = fusion_request(cfg)
    mode = (PriorMode(cfg.reset_after) if request is None
            else GRUMode(load_node_model(request, cfg, log), cfg.reset_after))
    aligner = StreamAligner(cfg.period, cfg.tolerance, cfg.max_wait, cfg.hold,
                            {"audio": AUDIO_HOP_MARGIN * cfg.audio_hop, "face": cfg.face_interval},
                            cfg.time_jump_threshold, cfg.max_lag,
                            cfg.gone_after)
    speakers = SpeakerAttribution(SpeakerConfig(min_activity=cfg.lip_activity_threshold,
                                                camera_hfov_deg=cfg.camera_hfov)) if cfg.speaker_attribution else None
    if request is not None:
        _check_face_feature(mode)
        trained = float(mode.model.card.model_args.get("audio_delay", 0.0))   # cards from before it: 0
        if abs(trained - cfg.audio_delay) > 1e-9:
            mode.release()
            raise ConfigError(f"parameter 'audio_delay' is {cfg.audio_delay:g}, but the fusion model "
                              f"'{mode.model_id}' was trained with audio {trained:g} s before each step; allowed: "
                              f"{trained:g} (emo_train fusion --set audio_delay=... trains for another)")
    return FusionPipeline(mode, aligner, speakers, cfg.audio_delay)
