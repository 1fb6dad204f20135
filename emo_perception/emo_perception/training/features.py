"""Per-session features computed once by the runtime's own builders and cached on disk.

Faces: the face node's pipeline (build_face_pipeline: detector, tracker, roll-levelled crops, face
model) over the decoded frames at the node's processing rate; the crops and model outputs are taken
from the very model call the node makes. Audio: the audio node's stream (build_audio_stream: chunks
stamped like audio_capture, resampling, windows every 40 ms, log-mel, encoder, VAD); the log-mel
windows are the ones its encoder receives.

A cache file's name and contents carry a key: the sha256 of the code that made it, the model ids,
the configuration and the media file's identity (path, size, mtime). A different key is a rebuild,
never a silent reuse. The detector's answers per frame are cached apart (`<session>.detections.json`,
keyed without the face model): a stage with another face model (the fusion stage after the face
stage) runs the tracker, crops and its model on them instead of detecting every frame again.
Face crops are written only when a stage asks for them (the face stage): they are face images of
the people recorded, kept in the cache folder the user chose.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import pathlib
import time

import numpy as np

from ..conversions import AudioFormat
from ..core.audio_pipeline import AudioChunkError, NetworkAudioEncoder
from ..core.face_crop import CROP_SIZE, crop_patches
from ..core.face_detection import Detection, DetectionError
from ..core.face_landmarks import BLENDSHAPE_NAMES
from ..core.face_pipeline import release_model
from ..recordings.media import T0
from ..recordings.media import MediaError, audio_track, video_frames
from ..inference.model_card import load_card
from ..paths import atomic_open, resolve_model
from ..runtime.build import (build_audio_stream, build_face_pipeline, detector_request, follows_faces,
                             landmark_requests)
from ..runtime.config import AudioConfig, FaceConfig

CHUNK = 1600         # audio samples per pushed chunk (0.1 s at 16 kHz)
PKG = pathlib.Path(__file__).resolve().parents[1]
FACE_CODE = ("core/face_crop.py", "core/face_model_io.py", "core/face_detection.py", "core/blazeface.py",
             "core/face_pipeline.py", "core/circumplex.py", "core/tracking.py", "core/lip_activity.py",
             "core/face_landmarks.py", "core/head_pose.py", "core/blendshape_prior.py",
             "core/background_detection.py", "runtime/build.py", "recordings/media.py", "training/features.py")
# which frames get a full detection follows from the pipeline's schedule and tracks (detect_every, detect_async)
DETECT_CODE = ("core/face_detection.py", "core/blazeface.py", "core/face_pipeline.py", "core/tracking.py",
               "core/background_detection.py", "runtime/build.py", "recordings/media.py", "training/features.py")
AUDIO_CODE = ("core/audio_frontend.py", "core/audio_buffer.py", "core/audio_pipeline.py", "core/vad.py",
              "runtime/build.py", "recordings/media.py", "training/features.py")


# face settings that act only on what the detector found: they do not change the cached detections
AFTER_DETECTION = ("face_landmarks", "face_prior", "lip_source")


def _after_detection(cfg: FaceConfig) -> tuple:
    """AFTER_DETECTION, but for the landmarker where faces are followed: its landmarks follow them, which decides
    when the next full detection comes (a record of the other setting would not fit: detected again)."""
    return tuple(k for k in AFTER_DETECTION if k != "face_landmarks") if follows_faces(cfg) else AFTER_DETECTION


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


def _load(path: pathlib.Path, key: str) -> dict | None:
    """The arrays of cache file `path` if it holds `key`; None if missing, unreadable or another key's."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["cache_key"]) == key:
                return {k: z[k] for k in z.files if k != "cache_key"}
    except (OSError, ValueError, KeyError):
        pass   # unreadable or foreign: rebuilt
    return None


# The cache files this process computed (not loaded), "<session>.<kind>" in order: the per-rank record of
# what each rank extracted (extract.py puts it in summary.json's `extraction`)
COMPUTED: list[str] = []
# Told one line per cache file computed (emo_train's progress: extraction can take minutes before the training's
# progress bar starts); None: quiet. Set by training/run.py for the stage's run.
progress_note = None
UNUSABLE = "unusable"      # the member of a cache file that records why the session gave no features


ON_DISK = ("crop",)        # members kept in their own .npy beside the .npz and loaded memory-mapped
_ON_DISK_LIST = "on_disk"  # the .npz member naming them


def _sidecar(path: pathlib.Path, key: str, name: str) -> pathlib.Path:
    return path.with_name(f"{path.name[:-4]}.{key[:16]}.{name}.npy")


def _cached(cache_dir, session_name: str, kind: str, parts: dict, compute):
    """Load `<cache>/<session>.<kind>.npz` if its stored key matches `parts`, else compute and store.
    A session found unusable (SessionUnusable) is stored too, with its reason, and raises again when
    loaded: the ranks that load what another rank extracted get the same skip, without decoding again.
    Face crops (ON_DISK) go to a .npy of their own, named by the key, and come back memory-mapped: a
    data set's crops are read from disk as batches ask for them (AffectNet's ~290k are 1.2 GB)."""
    key = _key(parts)
    path = pathlib.Path(cache_dir) / f"{session_name}.{kind}.npz"
    stored = _load(path, key)
    if stored is not None:
        if UNUSABLE in stored:
            raise SessionUnusable(str(stored[UNUSABLE]))
        names = [str(n) for n in stored.pop(_ON_DISK_LIST, ())]
        if all(_sidecar(path, key, n).is_file() for n in names):
            return {**stored, **{n: np.load(_sidecar(path, key, n), mmap_mode="r") for n in names}}
    COMPUTED.append(f"{session_name}.{kind}")
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        data = compute()
    except SessionUnusable as err:
        with atomic_open(path) as f:
            np.savez(f, cache_key=np.array(key), **{UNUSABLE: np.array(str(err))})
        raise
    if progress_note is not None:
        progress_note(f"extracted {kind} of {session_name} in {time.monotonic() - started:.1f} s "
                      f"(cached in {path.parent})")
    names = [n for n in ON_DISK if n in data]
    for n in ON_DISK:     # an earlier key's
        for old in path.parent.glob(f"{path.name[:-4]}.{'?' * 16}.{n}.npy"):
            old.unlink(missing_ok=True)
    for n in names:     # before the .npz: a reader that finds the .npz finds its crops
        with atomic_open(_sidecar(path, key, n)) as f:
            np.save(f, np.ascontiguousarray(data[n]))
    with atomic_open(path) as f:
        np.savez(f, cache_key=np.array(key), **{_ON_DISK_LIST: np.array(names, dtype="U32")},
                 **{k: v for k, v in data.items() if k not in names})
    return {**data, **{n: np.load(_sidecar(path, key, n), mmap_mode="r") for n in names}}


class _BatchedFaceModel:
    """The face model with the crops of consecutive frames encoded together (extract_batch per call).

    The face pipeline runs every frame as the node does (detector, tracker, crops, lip activity); its
    model call is answered at once with zeros, and the crops it was given are kept. `flush` (after a
    frame, once `batch` crops wait, and at the end) runs the real model on them and reads its outputs
    as the pipeline does (face_model_io's read), so `results` holds, in the order of the rows, what
    the node's own call gives (within float rounding of another batch size). None of the pipeline's
    per-frame steps reads the model's outputs: they only fill the frame's results."""

    def __init__(self, model, batch: int):
        from ..core.face_model_io import face_model_io

        self.model, self.card, self.io = model, model.card, face_model_io(model.card)
        spec = next(t for t in model.card.inputs if t["name"] == self.io.input)
        self.batch = 1 if spec["shape"][0] == 1 else batch     # a model exported for one face at a time
        heads = [h for h in (self.io.expression, self.io.valence, self.io.arousal, self.io.embedding) if h]
        self.widths = {name: max(h.stop for h in heads if h.output == name) for name in {h.output for h in heads}}
        self.pending, self.results = [], []     # crops waiting; (embedding, probabilities, va) per flush

    def run(self, feeds):
        x = feeds[self.io.input]
        self.pending.append(x)
        return {name: np.zeros((len(x), w), np.float32) for name, w in self.widths.items()}

    def waiting(self) -> int:
        return sum(len(x) for x in self.pending)

    def flush(self):
        if not self.pending:
            return
        if self.batch == 1:      # each frame's crops in one call, as the node (or one crop, as the pipeline splits)
            parts = self.pending
        else:
            x = np.concatenate(self.pending)
            parts = [x[k:k + self.batch] for k in range(0, len(x), self.batch)]
        self.pending = []
        for part in parts:
            self.results.append(self.io.read(self.model.run({self.io.input: part}), len(part)))

    def outputs(self):
        """(embeddings, probabilities, va) of every crop given, in order."""
        self.flush()
        if not self.results:
            return None
        return tuple(np.concatenate([r[i] for r in self.results]) for i in range(3))

    def release(self):
        release_model(self.model)


class _StaleRecord(RuntimeError):
    """Cached detections that do not fit the frames decoded now (another decoder): detected again."""


class _DetectionRecord:
    """The detector's answer to each frame, in call order: kept (record) or given back (replay).

    Replaying gives the pipeline exactly what the detector gave (python ints and floats round-trip
    through JSON), so the tracker, lip activity and crops behave as on the first run; the frame sizes
    are checked call by call and the count at the end: a record that does not fit (_StaleRecord) is
    dropped and the session detected again."""

    def __init__(self, detector, replay: list | None = None):
        self.detector, self.replay, self.frames = detector, replay, []
        self.next_answer = None    # (size, detections or the DetectionError) of the next frame: detected in a batch
        # the time of the frame being processed: with detect_every > 1 or detect_async not every frame is
        # detected, and a replay must give each answer to the frame it was made for
        self.frame_time = None

    def detect_in_batches(self, frames: list, batch: int) -> list:
        """The detector's answers for `frames` (batch frames per network call: detect_many), one per
        frame: its detections, or the DetectionError it raises (a chunk that raised is detected again frame
        by frame, so only the frame at fault carries it)."""
        answers = []
        for start in range(0, len(frames), batch):
            chunk = frames[start:start + batch]
            try:
                answers += self.detector.detect_many(chunk, batch)
            except DetectionError:       # which frame: each on its own, as the node would see them
                answers += [self._one(rgb) for rgb in chunk]
        return answers

    def _one(self, rgb):
        """The detector's answer for one frame: its detections, or the error it raised."""
        try:
            return self.detector.detect(rgb)
        except ValueError as err:     # DetectionError and the frame checks' ValueErrors
            return err

    def detect(self, rgb):
        size = list(rgb.shape[:2])
        if self.replay is None:       # detected now, or in the batch this frame came in (next_answer)
            ready = self.next_answer is not None and self.next_answer[0] == size
            answer, self.next_answer = (self.next_answer[1] if ready else self._one(rgb)), None
            if isinstance(answer, ValueError):
                self.frames.append([size, str(answer), self.frame_time])
                raise answer
            self.frames.append([size, [[d.x, d.y, d.w, d.h, d.score, d.keypoints] for d in answer], self.frame_time])
            return answer
        k = len(self.frames)
        if k >= len(self.replay) or self.replay[k][0] != size or self.replay[k][2:] != [self.frame_time]:
            raise _StaleRecord(f"cached detections do not fit frame {k} ({size[1]}x{size[0]}, at "
                               f"{self.frame_time} s)")
        self.frames.append(self.replay[k])
        answer = self.replay[k][1]
        if isinstance(answer, str):
            raise DetectionError(answer)
        return [Detection(*d[:5], None if d[5] is None else tuple(tuple(p) for p in d[5])) for d in answer]

    def complete(self) -> bool:
        return self.replay is None or len(self.frames) == len(self.replay)


def _detections(cache_dir, session_name: str, cfg: FaceConfig, media: dict):
    """(path, key, the cached answers or None) of a session's detections under `cfg` (None path: not
    cached: face_source hri). With detect_every > 1 or detect_async only the full detections are kept (each with
    its frame's time); the region detections follow the tracks again on a replay."""
    if cfg.face_source != "detector":
        return None, None, None
    request = detector_request(cfg)
    import av

    parts = {"code": code_hash(DETECT_CODE), "media": media, "decoder": av.__version__,
             "detector": load_card(request.card_path).model_id if request is not None else cfg.detector,
             "config": {k: v for k, v in dataclasses.asdict(cfg).items()
                        if k not in ("threads", "device", "backend", "face_model") + _after_detection(cfg)}}
    key = _key(parts)
    path = pathlib.Path(cache_dir) / f"{session_name}.detections.json"
    try:
        stored = json.loads(path.read_text())
        return path, key, stored["frames"] if stored.get("cache_key") == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return path, key, None      # missing, unreadable or another key's: detected again


def _store_detections(path, key, record: _DetectionRecord):
    if path is None or record.replay is not None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        f.write(json.dumps({"cache_key": key, "frames": record.frames}).encode())


class _InputRecorder:
    """An audio encoder that keeps every log-mel window it is given. A network encoder (an audio_encoder
    card) with batch > 1 is answered with zeros and run afterwards on `batch` windows per call
    (`embeddings`): no step of the audio stream reads the embedding, it only fills the window's result."""

    def __init__(self, encoder, batch: int = 1):
        self.encoder, self.inputs, self.mels = encoder, [], []
        self.input, self.model_id = getattr(encoder, "input", "log_mel"), encoder.model_id
        self.deferred = batch > 1 and isinstance(encoder, NetworkAudioEncoder)
        self.batch = batch

    def __call__(self, x):
        if self.input != "samples":
            self.inputs.append(x.astype(np.float16))
        if self.deferred:
            self.mels.append(np.asarray(x, np.float32))
            return np.zeros(self.encoder.dim, np.float32)
        return self.encoder(x)

    def embeddings(self):
        """The deferred windows' embeddings, in order (None when nothing was deferred)."""
        if not self.deferred:
            return None
        model, out = self.encoder.model, []
        for k in range(0, len(self.mels), self.batch):
            out.append(model.run({"log_mel": np.stack(self.mels[k:k + self.batch])[:, None]})["embedding"])
        return np.concatenate(out) if out else np.zeros((0, self.encoder.dim), np.float32)

    def release(self):
        release_model(self.encoder)


def landmarker_ids(cfg: FaceConfig) -> list[str]:
    """Model ids of the landmarker's models (face_landmarks on; else none)."""
    return [load_card(r.card_path).model_id for r in landmark_requests(cfg)]


def _with_answers(frames, record: _DetectionRecord, batch: int):
    """(time, frame, the detector's answer or None: detected when the pipeline asks) per frame; with
    batch > 1 the frames are read `batch` at a time and detected together (detect_many)."""
    if batch <= 1:
        yield from ((t, rgb, None) for t, rgb in frames)
        return
    frames = iter(frames)
    while chunk := list(itertools.islice(frames, batch)):
        answers = record.detect_in_batches([rgb for _, rgb in chunk], batch)
        yield from ((t, rgb, a) for (t, rgb), a in zip(chunk, answers))


def face_features(session, cfg: FaceConfig, cache_dir, keep_crops: bool = False, batch: int = 1,
                  detect_batch: int = 1) -> dict:
    """Per face seen: time (s from the media start), track, box, embedding, logits (log-probabilities),
    valence/arousal of the face model, mouth activity, with the landmarker the blendshapes (and the
    64x64 crop as uint8 with keep_crops); `frame_times`: every frame processed. `batch`: face crops per
    face-model call; `detect_batch`: frames per detector call (on a GPU; the answers are the same)."""
    cfg_parts = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("threads", "device", "backend")}
    card = load_card(resolve_model(cfg.face_model, "expression_teacher"))

    def compute():
        det_path, det_key, replay = _detections(cache_dir, session.name, cfg, media_id(session.video))
        try:
            return extract(det_path, det_key, replay)
        except _StaleRecord:
            return extract(det_path, det_key, None)     # detected again; the record is rewritten

    def extract(det_path, det_key, replay):
        pipeline = build_face_pipeline(cfg)
        batched = pipeline.model = _BatchedFaceModel(pipeline.model, batch)
        record = _DetectionRecord(pipeline.detector, replay)
        pipeline.use_detector(record, threaded=False, passes=(_StaleRecord,))
        rows, crops, frame_times = [], [], []
        # following faces, a third of the frames or fewer are detected whole: batches would detect them all
        batched_detection = detect_batch > 1 and replay is None and hasattr(record.detector, "detect_many") \
            and not follows_faces(cfg)
        try:
            for t, rgb, answer in _with_answers(video_frames(session.video, cfg.processing_rate), record,
                                                detect_batch if batched_detection else 1):
                record.next_answer = None if answer is None else (list(rgb.shape[:2]), answer)
                record.frame_time = t
                try:
                    result = pipeline.process(rgb, T0 + t)
                except (DetectionError, ValueError):
                    continue   # a frame the node would reject too
                frame_times.append(t)
                if batched.waiting() >= batched.batch:
                    batched.flush()
                for f in result.faces:     # embedding, expression and valence/arousal: batched.outputs()
                    rows.append((t, f.track_id, f.box, f.mouth_activity, f.blendshapes))
                    if keep_crops:
                        # the student's crop of the box the node found (the face model's own crop may be
                        # another: an imported teacher's RGB 224x224), exactly as crop_faces makes it
                        crops.append(crop_patches(rgb, [f.box], CROP_SIZE, rolls=[f.roll])[0])
            encoded = batched.outputs()      # the crops still waiting, before the model is released
        except MediaError as err:
            raise SessionUnusable(str(err)) from err
        finally:
            pipeline.detector = record.detector
            pipeline.release()
        if not record.complete():
            raise _StaleRecord(f"cached detections of '{session.video}': {len(record.replay)} frames, "
                               f"{len(record.frames)} decoded now")
        _store_detections(det_path, det_key, record)
        if not frame_times:
            raise SessionUnusable(f"no decodable video frames in '{session.video}'")
        io = pipeline.io
        emb_dim = io.embedding.stop - io.embedding.start if io.embedding else 0
        n_expr = len(io.expression_labels)
        emb, probs, va = encoded or (np.zeros((0, emb_dim)), np.zeros((0, n_expr)), np.zeros((0, 2)))
        if len(emb) != len(rows):
            raise RuntimeError(f"face features of '{session.video}': {len(emb)} crops encoded for {len(rows)} faces")
        out = {"frame_times": np.array(frame_times, np.float64),
               "time": np.array([r[0] for r in rows], np.float64),
               "track": np.array([r[1] for r in rows], dtype="U32"),
               "box": np.array([r[2] for r in rows], np.int32).reshape(-1, 4),
               "embedding": np.asarray(emb, np.float32).reshape(len(rows), emb_dim),
               "logits": np.log(np.maximum(probs, 1e-12)).astype(np.float32).reshape(len(rows), n_expr),
               "va": np.asarray(va, np.float32).reshape(-1, 2),
               "mouth": np.array([r[3] for r in rows], np.float32),
               "model_id": np.array(card.model_id)}
        if keep_crops:
            out["crop"] = np.array(crops, np.uint8).reshape(-1, CROP_SIZE, CROP_SIZE)
        if cfg.face_landmarks:     # NaN rows: the landmarker found no face in the box (the node sends none)
            out["blendshapes"] = np.array([np.full(len(BLENDSHAPE_NAMES), np.nan) if r[4] is None else r[4]
                                           for r in rows], np.float32).reshape(len(rows), len(BLENDSHAPE_NAMES))
        return out

    parts = {"code": code_hash(FACE_CODE), "face_model": card.model_id, "config": cfg_parts, "crops": keep_crops,
             "media": media_id(session.video), "landmarker": landmarker_ids(cfg)}
    if not pathlib.Path(session.video).is_file():
        raise SessionUnusable(f"media file '{session.video}' does not exist")
    # its own file with the landmarker: the fusion stage reads both (the GRU's blendshapes, the prior
    # baseline's teacher without them), and one file per session would hold only the last key
    kind = "faces" + (".landmarks" if cfg.face_landmarks else "") + (".crops" if keep_crops else "")
    return _cached(cache_dir, session.name, kind, parts, compute)


def audio_features(session, cfg: AudioConfig, cache_dir, batch: int = 1) -> dict:
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
        recorder = stream.encoder = _InputRecorder(stream.encoder, batch)
        stream.set_format(AudioFormat(16000, 1, "S16LE"))
        mono = track.samples.astype(np.float32).mean(axis=1) / 32768.0
        windows = []
        try:
            for k in range(0, len(mono) - CHUNK + 1, CHUNK):
                windows += stream.push(mono[k:k + CHUNK], T0 + k / 16000).windows
            deferred = recorder.embeddings()
        except AudioChunkError as err:
            raise SessionUnusable(f"audio of '{source}': {err}") from err
        finally:
            stream.release()
        if deferred is not None:
            if len(deferred) != len(windows):
                raise RuntimeError(f"audio features of '{source}': {len(deferred)} windows encoded for {len(windows)}")
            for w, e in zip(windows, deferred):
                w.embedding = e
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
