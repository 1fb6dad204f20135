"""The node configurations: one dataclass per YAML block, the one source of defaults.

`config/emo_perception.yaml` and the parameters the nodes declare are tested to equal these.
Nodes go ROS parameters -> config -> build (build.py); offline tools go YAML -> config -> build.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.alignment import GONE_AFTER, HOLD, MAX_LAG, MAX_WAIT, PERIOD, TOLERANCE
from ..core.audio_buffer import WINDOW_S
from ..core.audio_pipeline import STAMP_POSITIONS
from ..core.fusion_pipeline import MODES
from ..core.speaker import SpeakerConfig
from ..core.stream_time import STAMP_SOURCES, TIME_JUMP_S
from ..inference import BACKENDS, PRECISIONS
from .params import ConfigError, param

RELIABILITIES = ("best_effort", "reliable")
DETECTORS = ("blazeface", "haar", "yunet")
FACE_SOURCES = ("detector", "hri")


@dataclass
class NodeConfig:
    """What every node has."""
    autostart: bool = param(True, "configure and activate at start-up, for use without a lifecycle manager")
    diagnostics_period: float = param(1.0, "seconds between /diagnostics messages", range=(0.1, 60.0))
    processing_time_warn: float = param(0.05, "processing time per input (s) above which diagnostics WARN",
                                        range=(0.0, 10.0))
    processing_time_error: float = param(0.2, "processing time per input (s) above which diagnostics ERROR",
                                         range=(0.0, 10.0))
    privacy_mode: bool = param(False, "publish no raw image or audio (e.g. no debug image) and, in tools reading "
                               "this file, write none: faces and voices are personal data")
    time_jump_threshold: float = param(TIME_JUMP_S, "seconds a stamp may be off the previous one before the stream "
                                       "counts as restarted (looping bag, clock step): state resets",
                                       range=(0.05, 3600.0))

    def check(self):
        if self.processing_time_error < self.processing_time_warn:
            raise ConfigError(f"parameter 'processing_time_error' is {self.processing_time_error}; "
                              f"allowed: >= processing_time_warn ({self.processing_time_warn})")


@dataclass
class BackendConfig(NodeConfig):
    """Nodes that run a model: which backend runs it."""
    backend: str = param("onnxruntime", "inference backend", choices=BACKENDS)
    device: str = param("cpu", "device for onnxruntime/torch (tensorrt always uses cuda)", choices=("cpu", "cuda"))
    threads: int = param(1, "CPU threads for inference", range=(1, 64))
    tensorrt_precision: str = param("fp16", "TensorRT engine precision", choices=PRECISIONS)
    engine_cache_dir: str = param("", "TensorRT engine cache ('' = ~/.cache/emo_perception/engines)")
    force_engine_update: bool = param(False, "rebuild the TensorRT engine even if a cached one exists")


# The face node processes a frame on arrival once this share of its processing period has passed since
# the previous one began (else at its next tick): its outputs are at least PROCESS_ON_ARRIVAL /
# processing_rate apart, which the fusion may rely on (face_interval), as it does on audio_hop.
PROCESS_ON_ARRIVAL = 0.9
FACE_PROCESSING_RATE = 15.0


@dataclass
class FaceConfig(BackendConfig):
    processing_rate: float = param(FACE_PROCESSING_RATE, "frames processed per second at most (a frame is processed "
                                   "on arrival when 0.9 of the period has passed since the previous one, else at the "
                                   "next tick; newer frames replace older ones)", range=(0.1, 120.0))
    face_model: str = param("", "face model card (.json): ours, a student from emo_train, or an imported model "
                            "(emo_import_model: HSEmotion, EmoNet, any ONNX; docs/face_models.md); '' = the shipped "
                            "expression teacher; a relative path is looked up in the current folder, then in the "
                            "package's models/")
    face_source: str = param("detector", "where faces come from: 'detector' (our detector on `image`) or 'hri' "
                             "(ROS4HRI hri_face_detect: /humans/faces/tracked + /humans/faces/<id>/aligned; needs "
                             "hri_msgs)", choices=FACE_SOURCES)
    hri_max_age: float = param(0.2, "with face_source 'hri': how much older (s) than the tracked list an aligned face "
                               "may be and still be used", range=(0.0, 5.0))
    detector: str = param("blazeface", "face detector: blazeface (MediaPipe's full-range CNN, shipped, runs on "
                          "`backend`), haar (OpenCV cascade, frontal faces only) or yunet (needs detector_model)",
                          choices=DETECTORS)
    detector_model: str = param("", "detector model: '' = the shipped blazeface_full_range card (blazeface); "
                                "yunet: path of the OpenCV zoo ONNX")
    detector_max_width: int = param(576, "detection width (px): blazeface runs on a ~16:9 canvas this wide (a "
                                    "multiple of 32; 576x320 sees a 48 px face of a 1280x720 frame at 21 px, its limit "
                                    "is ~15 px; docs/face_detection.md); haar/yunet downscale frames to this width",
                                    range=(64, 4096))
    detector_threshold: float = param(0.5, "detection score a face needs (blazeface; MediaPipe uses 0.6; at 0.5 "
                                      "one false face on 117 real non-face frames, docs/face_detection.md)",
                                      range=(0.05, 0.99))
    min_face_size: int = param(0, "smallest face reported, in detector pixels (0 = the detector's own: blazeface "
                               "8, haar 32)", range=(0, 1024))
    max_faces: int = param(8, "faces encoded per frame (largest-confidence first)", range=(1, 64))
    detect_every: int = param(3, "run the full-frame detector on every N-th processed frame; in between, look "
                              "for each face of the previous frame only around where its track is predicted (a "
                              "96 px square: ~1/20 of blazeface's cost; a new face is found up to N-1 frames "
                              "later, a lost one makes the next frame a full one; 1 = every frame; "
                              "docs/face_detection.md)", range=(1, 30))
    detect_async: bool = param(True, "run a full-frame detection that is due while there are faces to follow in a "
                               "worker thread, and follow those faces meanwhile (the frame waits for the 96 px "
                               "regions only, not the whole canvas); the next frame looks around the new faces it "
                               "found, so a new face comes one frame later (docs/face_detection.md)")
    face_landmarks: bool = param(False, "also run MediaPipe's face landmarker on every face: 52 blendshapes (facial "
                                 "actions) and the head pose in each FaceEmbedding (~8 ms + 2 ms per face on 2 CPU "
                                 "threads; docs/face_detection.md); needs face_source 'detector'")
    face_prior: str = param("circumplex", "where a face model without valence/arousal outputs (the shipped "
                            "teacher) gets the face's valence/arousal: 'circumplex' (its expression probabilities "
                            "on fixed circumplex points) or 'blendshapes' (the landmarker's facial actions, "
                            "core/blendshape_prior.py; needs face_landmarks; docs/face_detection.md)",
                            choices=("circumplex", "blendshapes"))
    lip_source: str = param("auto", "what the lip activity (speaker attribution) is measured from: 'keypoints' "
                            "(mouth patches registered by the detector's keypoints), 'landmarks' (the landmarker's "
                            "jawOpen; needs face_landmarks) or 'auto' (landmarks when face_landmarks is on; "
                            "docs/speaker.md)", choices=("auto", "keypoints", "landmarks"))
    track_min_iou: float = param(0.3, "box overlap that continues a track", range=(0.0, 1.0))
    track_max_age: float = param(1.0, "seconds (data time) after which an unseen track ends", range=(0.0, 60.0))
    use_compressed: bool = param(False, "subscribe to image/compressed (JPEG/PNG) instead of image")
    stamp_source: str = param("header", "what places a frame in time: its 'header' stamp, or its 'arrival' time on "
                              "this node's clock (for cameras that do not stamp: later than the capture by the "
                              "driver's and the transport's delay, and jittered; docs/robustness.md)",
                              choices=STAMP_SOURCES)
    input_reliability: str = param("best_effort", "reliability of the image subscription", choices=RELIABILITIES)
    debug_image: bool = param(True, "offer faces/debug_image (drawn only while someone subscribes)")
    threads: int = param(2, "CPU threads for inference", range=(1, 64))

    @property
    def lips_from_landmarks(self) -> bool:
        return self.lip_source == "landmarks" or (self.lip_source == "auto" and self.face_landmarks)

    def check(self):
        super().check()
        if self.detector == "yunet" and not self.detector_model:
            raise ConfigError("parameter 'detector_model' is ''; detector 'yunet' needs the path of "
                              "face_detection_yunet_2023mar.onnx")
        if self.face_prior == "blendshapes" and not self.face_landmarks:
            raise ConfigError("parameter 'face_prior' is 'blendshapes'; it needs face_landmarks: true (or set "
                              "face_prior 'circumplex')")
        if self.lip_source == "landmarks" and not self.face_landmarks:
            raise ConfigError("parameter 'lip_source' is 'landmarks'; it needs face_landmarks: true (or set "
                              "lip_source 'keypoints' or 'auto')")
        if self.face_landmarks and self.face_source != "detector":
            raise ConfigError(f"parameter 'face_landmarks' is true; it needs face_source 'detector' (the "
                              f"landmarker's crop follows our detector's box and eye keypoints), not "
                              f"'{self.face_source}'")


@dataclass
class AudioConfig(BackendConfig):
    audio_model: str = param("logmel_stats", "audio encoder: 'logmel_stats' (untrained log-mel statistics), 'egemaps' "
                             "(openSMILE eGeMAPS functionals, needs the opensmile wheel: research licence), "
                             "an audio_encoder model card (.json; relative: the current folder, then the "
                             "package's models/) or a voice model card (emo_import_model; window and hop must be "
                             "the card's; docs/voice_models.md)")
    hop: float = param(0.04, "seconds between embeddings (0.04 = the 25 Hz annotation rate)", range=(0.01, 1.0))
    window: float = param(WINDOW_S, "seconds of audio per embedding (0.975 = 96 log-mel frames)", range=(0.1, 5.0))
    gap_tolerance: float = param(0.15, "seconds a chunk may arrive late (scheduling jitter) before samples are "
                                 "taken as missing and the stream restarts", range=(0.001, 1.0))
    stamp_position: str = param("start", "what an AudioDataStamped stamp marks: the 'start' of the chunk (ROS 2 "
                                "audio_capture: capture time of its first sample) or its 'end' (drivers that "
                                "stamp on arrival); with stamp_source 'arrival' it must be 'end'",
                                choices=STAMP_POSITIONS)
    stamp_source: str = param("header", "what places a chunk in time: its 'header' stamp, or its 'arrival' time on "
                              "this node's clock, taken as its end (for drivers that do not stamp: later than the "
                              "capture by the driver's buffering and the transport, and jittered; "
                              "docs/robustness.md)", choices=STAMP_SOURCES)
    input_reliability: str = param("best_effort", "reliability of the audio subscription", choices=RELIABILITIES)
    processing_time_warn: float = param(0.02, "processing time per audio chunk (s) above which diagnostics WARN",
                                        range=(0.0, 10.0))
    processing_time_error: float = param(0.04, "processing time per audio chunk (s) above which diagnostics ERROR",
                                         range=(0.0, 10.0))

    def check(self):
        super().check()
        if self.hop > self.window:
            raise ConfigError(f"parameter 'hop' is {self.hop}; allowed: <= window ({self.window})")
        if self.stamp_source == "arrival" and self.stamp_position != "end":
            raise ConfigError(f"parameter 'stamp_position' is '{self.stamp_position}' but stamp_source is 'arrival': "
                              "a chunk arrives after its last sample; allowed: end")


@dataclass
class FusionConfig(BackendConfig):
    mode: str = param("prior", "'prior' (expression prior + voice, no training) or 'gru' (trained model)",
                      choices=tuple(MODES))
    fusion_model: str = param("fusion_gru.json", "fusion GRU model card for mode 'gru' (relative: the current "
                              "folder, then the package's models/)")
    period: float = param(PERIOD, "output period in seconds of data time (0.04 = 25 Hz)", range=(0.005, 1.0))
    tolerance: float = param(TOLERANCE, "how far (s) an embedding's stamp may be from its output step",
                             range=(0.0, 1.0))
    max_wait: float = param(MAX_WAIT, "how long (s, data time) to wait for a lagging stream, beyond its measured lag, "
                            "before fusing without it; a stream that starts or comes back while the other runs is "
                            "fused from this long after its first stamp (docs/robustness.md)", range=(0.0, 5.0))
    hold: float = param(HOLD, "how long (s, data time) an embedding stands in for missing newer ones (e.g. camera "
                        "frames skipped under load)", range=(0.0, 5.0))
    max_lag: float = param(MAX_LAG, "the largest lag (s) of a stream behind the other that the fusion adapts to: it "
                           "measures how far each stream's stamps trail the other's on arrival and waits that much "
                           "longer (a camera whose frames arrive 0.6 s after their stamps); beyond it the stream's "
                           "embeddings are dropped as late and diagnostics WARN; below time_jump_threshold",
                           range=(0.0, 5.0))
    gone_after: float = param(GONE_AFTER, "seconds (data time, the stream's own stamps) a stream may be silent and "
                              "still be waited for; after that its steps go out without it until it comes back",
                              range=(0.0, 10.0))
    audio_hop: float = param(0.04, "the audio node's hop (s): audio stamps are at least this far apart, so a step "
                             "can be fused without waiting for the next audio embedding", range=(0.0, 1.0))
    audio_delay: float = param(0.0, "each step fuses the audio of this long (s, data time) before it, so that it "
                               "does not wait for the audio chunk still being recorded: a chunk and half a hop, e.g. "
                               "0.084 for 1024-sample chunks at 16 kHz (docs/robustness.md); a gru model takes the "
                               "value it was trained with", range=(0.0, 0.5))
    face_interval: float = param(round(PROCESS_ON_ARRIVAL / FACE_PROCESSING_RATE, 6),
                                 "the smallest spacing (s) of the face node's outputs, 0.9 / its processing_rate: a "
                                 "step is fused with the newest face frame once no later frame could be nearer to "
                                 "it (no wait for the next frame); 0 = wait for a frame at or after each step (set "
                                 "it lower when the face node processes faster, e.g. offline replays of a faster "
                                 "camera)", range=(0.0, 1.0))
    reset_after: float = param(1.0, "seconds (data time) after which an unseen track's state is dropped",
                               range=(0.0, 60.0))
    max_tracks: int = param(8, "people fused per step by one model call (TensorRT profile maximum)", range=(1, 64))
    publish_hri: bool = param(False, "also publish /humans/faces/<id>/expression (needs hri_msgs)")
    speaker_attribution: bool = param(True, "give a voice only to the face whose lips move while it is heard; "
                                      "false: every face in view gets it (docs/speaker.md)")
    lip_activity_threshold: float = param(SpeakerConfig.min_activity, "lip activity (averaged over 1.5 s) a face "
                                          "needs to be taken as the speaker", range=(0.0, 10.0))
    sound_direction_topic: str = param("", "geometry_msgs/PoseStamped of the sound source (respeaker_ros "
                                       "'sound_localization'); '' = no direction of arrival")
    sound_direction_offset: float = param(0.0, "degrees added to the sound's azimuth: the microphone array's yaw "
                                          "relative to the camera (positive: array turned left)",
                                          range=(-180.0, 180.0))
    camera_hfov: float = param(70.0, "the camera's horizontal field of view (degrees), to place faces for the sound "
                               "direction", range=(1.0, 179.0))
    processing_time_warn: float = param(0.005, "processing time per fusion step (s) above which diagnostics WARN",
                                        range=(0.0, 10.0))
    processing_time_error: float = param(0.02, "processing time per fusion step (s) above which diagnostics ERROR",
                                         range=(0.0, 10.0))

    def check(self):
        super().check()
        for name in ("max_wait", "hold"):
            if getattr(self, name) < self.tolerance:
                raise ConfigError(f"parameter '{name}' is {getattr(self, name)}; "
                                  f"allowed: >= tolerance ({self.tolerance})")
        if self.gone_after < self.hold:
            raise ConfigError(f"parameter 'gone_after' is {self.gone_after}; allowed: >= hold ({self.hold})")
        if self.time_jump_threshold <= max(self.max_wait, self.max_lag, self.hold):
            raise ConfigError(f"parameter 'time_jump_threshold' is {self.time_jump_threshold}; allowed: > max_wait, "
                              f"max_lag and hold ({max(self.max_wait, self.max_lag, self.hold):g}): a stream further "
                              "behind looks like another time base")


STORAGES = ("mcap", "sqlite3")


@dataclass
class LoggerConfig(NodeConfig):
    """emo_record: the session log of a study (affect, events, metadata; never raw media)."""
    output_dir: str = param("~/emo_sessions", "folder that holds one folder per session")
    session: str = param("", "session folder name ('' = <participant>_<condition>_<date>); a restart with the same "
                         "name continues the session")
    participant: str = param("", "pseudonymous participant id (never a name: the log is personal data)")
    condition: str = param("", "experimental condition of the session")
    notes: str = param("", "free-form notes stored with the session")
    record_embeddings: bool = param(False, "also store face/audio embeddings in the bag (never raw images or audio)")
    storage: str = param("mcap", "bag format", choices=STORAGES)
    flush_period: float = param(1.0, "seconds between writes to disk (rows wait in memory until then)",
                                range=(0.1, 60.0))
    processing_time_warn: float = param(0.05, "write time per flush (s) above which diagnostics WARN",
                                        range=(0.0, 10.0))
    processing_time_error: float = param(0.5, "write time per flush (s) above which diagnostics ERROR",
                                         range=(0.0, 10.0))


@dataclass
class LiveViewConfig(NodeConfig):
    """emo_live_view: a local web page of the last minute of affect and events."""
    host: str = param("127.0.0.1", "address the page is served on: loopback by default; '0.0.0.0' (every "
                      "interface) only on purpose, the page shows people's affect")
    port: int = param(8080, "TCP port of the page", range=(1, 65535))
    window: float = param(60.0, "seconds of data time shown", range=(5.0, 3600.0))
    refresh_period: float = param(0.25, "seconds between the page's updates", range=(0.05, 10.0))


# node name -> its config (the YAML's block names)
NODE_CONFIGS = {"face_embedding_node": FaceConfig, "audio_embedding_node": AudioConfig, "fusion_node": FusionConfig,
                "session_logger_node": LoggerConfig, "live_view_node": LiveViewConfig}


def defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls)}
