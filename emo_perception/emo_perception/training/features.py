"""Per-session features computed once by the runtime's own builders and cached on disk.

Faces: the face node's pipeline (build_face_pipeline: detector, tracker, roll-levelled crops, face
model) over the decoded frames at the node's processing rate; the crops and model outputs are taken
from the very model call the node makes. Audio: the audio node's stream (build_audio_stream: chunks
stamped like audio_capture, resampling, windows every 40 ms, log-mel, encoder, VAD); the log-mel
windows are the ones its encoder receives.

A cache file's name and contents carry a key: the sha256 of the code that made it, the model ids,
the configuration and the media file's identity (path, size, mtime). A different key is a rebuild,
never a silent reuse. Face crops are written only when a stage asks for them (the face stage): they
are face images of the people recorded, kept in the cache folder the user chose.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib

import numpy as np

from ..conversions import AudioFormat
from ..core.audio_pipeline import AudioChunkError
from ..core.face_detection import DetectionError
from ..core.face_pipeline import release_model
from ..recordings.media import T0
from ..recordings.media import MediaError, audio_track, video_frames
from ..inference.model_card import load_card
from ..paths import atomic_open, resolve_model
from ..runtime.build import build_audio_stream, build_face_pipeline
from ..runtime.config import AudioConfig, FaceConfig

CHUNK = 1600         # audio samples per pushed chunk (0.1 s at 16 kHz)
PKG = pathlib.Path(__file__).resolve().parents[1]
FACE_CODE = ("core/face_crop.py", "core/face_detection.py", "core/blazeface.py", "core/face_pipeline.py",
             "core/circumplex.py", "core/tracking.py", "core/lip_activity.py", "runtime/build.py",
             "recordings/media.py", "training/features.py")
AUDIO_CODE = ("core/audio_frontend.py", "core/audio_buffer.py", "core/audio_pipeline.py", "core/vad.py",
              "runtime/build.py", "recordings/media.py", "training/features.py")


class SessionUnusable(ValueError):
    """The session's media cannot give features; the text is the reason the stage summary counts."""


def code_hash(files) -> str:
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode())
        h.update((PKG / rel).read_bytes())
    return h.hexdigest()


def media_id(path) -> dict:
    st = pathlib.Path(path).stat()
    return {"path": str(pathlib.Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _cached(cache_dir, session_name: str, kind: str, parts: dict, compute):
    """Load `<cache>/<session>.<kind>.npz` if its stored key matches `parts`, else compute and store."""
    key = _key(parts)
    path = pathlib.Path(cache_dir) / f"{session_name}.{kind}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["cache_key"]) == key:
                    return {k: z[k] for k in z.files if k != "cache_key"}
        except (OSError, ValueError, KeyError):
            pass   # unreadable or foreign: rebuilt below
    data = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        np.savez(f, cache_key=np.array(key), **data)
    return data


class _Recorder:
    """A backend model that keeps its last inputs and outputs (the crops the face node encodes)."""

    def __init__(self, model):
        self.model, self.card, self.last = model, model.card, None

    def run(self, feeds):
        out = self.model.run(feeds)
        self.last = (feeds, out)
        return out

    def release(self):
        release_model(self.model)


class _InputRecorder:
    """An audio encoder that keeps every log-mel window it is given."""

    def __init__(self, encoder):
        self.encoder, self.inputs = encoder, []
        self.input, self.model_id = getattr(encoder, "input", "log_mel"), encoder.model_id

    def __call__(self, x):
        if self.input != "samples":
            self.inputs.append(x.astype(np.float16))
        return self.encoder(x)

    def release(self):
        release_model(self.encoder)


def face_features(session, cfg: FaceConfig, cache_dir, keep_crops: bool = False) -> dict:
    """Per face seen: time (s from the media start), track, box, embedding, logits (log-probabilities),
    valence/arousal of the face model, mouth activity (and the 64x64 crop as uint8 with keep_crops);
    `frame_times`: every frame processed."""
    cfg_parts = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("threads", "device", "backend")}
    card = load_card(resolve_model(cfg.face_model, "expression_teacher"))

    def compute():
        pipeline = build_face_pipeline(cfg)
        recorder = _Recorder(pipeline.model)
        pipeline.model = recorder
        rows, crops, frame_times = [], [], []
        try:
            for t, rgb in video_frames(session.video, cfg.processing_rate):
                try:
                    result = pipeline.process(rgb, T0 + t)
                except (DetectionError, ValueError):
                    continue   # a frame the node would reject too
                frame_times.append(t)
                for i, f in enumerate(result.faces):
                    rows.append((t, f.track_id, f.box, f.embedding, np.log(np.maximum(f.expression_probabilities,
                                                                                      1e-12)),
                                 (f.valence, f.arousal), f.mouth_activity))
                    if keep_crops:
                        crops.append(np.round((recorder.last[0]["face"][i, 0] + 1) * 127.5).astype(np.uint8))
        except MediaError as err:
            raise SessionUnusable(str(err)) from err
        finally:
            pipeline.release()
        if not frame_times:
            raise SessionUnusable(f"no decodable video frames in '{session.video}'")
        emb_dim = int(card.outputs[0]["shape"][-1])
        out = {"frame_times": np.array(frame_times, np.float64),
               "time": np.array([r[0] for r in rows], np.float64),
               "track": np.array([r[1] for r in rows], dtype="U32"),
               "box": np.array([r[2] for r in rows], np.int32).reshape(-1, 4),
               "embedding": np.array([r[3] for r in rows], np.float32).reshape(-1, emb_dim),
               "logits": np.array([r[4] for r in rows], np.float32).reshape(-1, 7),
               "va": np.array([r[5] for r in rows], np.float32).reshape(-1, 2),
               "mouth": np.array([r[6] for r in rows], np.float32),
               "model_id": np.array(card.model_id)}
        if keep_crops:
            out["crop"] = np.array(crops, np.uint8).reshape(-1, 64, 64)
        return out

    parts = {"code": code_hash(FACE_CODE), "face_model": card.model_id, "config": cfg_parts, "crops": keep_crops,
             "media": media_id(session.video)}
    if not pathlib.Path(session.video).is_file():
        raise SessionUnusable(f"media file '{session.video}' does not exist")
    return _cached(cache_dir, session.name, "faces" + (".crops" if keep_crops else ""), parts, compute)


def audio_features(session, cfg: AudioConfig, cache_dir) -> dict:
    """Per window (every hop): end time (s from the media start), embedding, voice probability,
    loudness (dBFS), the log-mel window (float16) the encoder got; `peak_dbfs` of the whole track."""
    source = session.audio or session.video
    cfg_parts = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("threads", "device", "backend")}

    def compute():
        try:
            track = audio_track(source, rate=16000)
        except MediaError as err:
            raise SessionUnusable(str(err)) from err
        if track is None or len(track.samples) < 16000:
            raise SessionUnusable(f"no audio track (or under 1 s) in '{source}'")
        stream = build_audio_stream(cfg)
        recorder = stream.encoder = _InputRecorder(stream.encoder)
        stream.set_format(AudioFormat(16000, 1, "S16LE"))
        mono = track.samples.astype(np.float32).mean(axis=1) / 32768.0
        windows = []
        try:
            for k in range(0, len(mono) - CHUNK + 1, CHUNK):
                windows += stream.push(mono[k:k + CHUNK], T0 + k / 16000).windows
        except AudioChunkError as err:
            raise SessionUnusable(f"audio of '{source}': {err}") from err
        finally:
            stream.release()
        peak = float(np.abs(mono).max())
        return {"time": np.array([w.end_time - T0 for w in windows], np.float64),
                "embedding": np.array([w.embedding for w in windows], np.float32).reshape(len(windows), -1),
                "voice": np.array([w.voice_probability for w in windows], np.float32),
                "loudness": np.array([w.loudness_dbfs for w in windows], np.float32),
                # the log-mel windows the encoder got (none for eGeMAPS, which takes the samples)
                "mel": np.array(recorder.inputs, np.float16).reshape(-1, 96, 64),
                "peak_dbfs": np.array(20 * np.log10(max(peak, 1e-10))),
                "model_id": np.array(recorder.model_id)}

    if not pathlib.Path(source).is_file():
        raise SessionUnusable(f"media file '{source}' does not exist")
    parts = {"code": code_hash(AUDIO_CODE), "audio_model": audio_model_id(cfg), "config": cfg_parts,
             "media": media_id(source)}
    return _cached(cache_dir, session.name, "audio", parts, compute)


def audio_model_id(cfg: AudioConfig) -> str:
    if cfg.audio_model == "logmel_stats":
        return "logmel_stats@1"
    if cfg.audio_model == "egemaps":
        from ..core.egemaps import EgemapsEncoder
        return EgemapsEncoder().model_id
    return load_card(resolve_model(cfg.audio_model, cfg.audio_model)).model_id
