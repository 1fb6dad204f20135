"""PCM chunks -> windows every hop -> audio embeddings: the audio node's one call into the core."""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from .audio_buffer import (APPEND, BAD_STAMP, FILL, GAP, JUMPED, NEW, SKIP, STALE, WINDOW_S, AudioWindower,
                           ChunkClock, as_mono)
from .audio_frontend import SAMPLE_RATE, StreamResampler, log_mel, loudness_dbfs
from .face_pipeline import release_model
from .health import ERROR, OK, WARN
from .stream_time import TIME_JUMP_S
from .voice_model import DIMENSIONS, VoiceModelEncoder

RATE_CHECK_AFTER_S = 2.0     # stamps must span this long before the declared sample rate is checked
RATE_WINDOW_S = 4.0          # sliding window of the check (a chunk lost in it costs ~1.5 %)
RATE_MISMATCH = 0.05         # relative difference that counts as a wrong sample rate
# Where a chunk's stamp lies: ROS 2 audio_capture stamps the capture time of its first sample.
STAMP_POSITIONS = ("start", "end")


class LogMelStatsEncoder:
    """Untrained, deterministic audio embedding: per-band mean and std of the log-mel window (128-d).

    The default until a trained audio encoder is exported: no random weights, and it carries
    loudness and spectral shape, which is what the prior mode needs.
    """

    model_id = "logmel_stats@1"
    dim = 128

    def __call__(self, mel: np.ndarray) -> np.ndarray:          # (frames, 64)
        return np.concatenate([mel.mean(axis=0), mel.std(axis=0)]).astype(np.float32)


class NetworkAudioEncoder:
    """An exported audio_encoder model behind any backend."""

    def __init__(self, model):
        self.model, self.model_id = model, model.card.model_id
        self.dim = int(model.card.outputs[0]["shape"][-1])

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        return self.model.run({"log_mel": mel[None, None]})["embedding"][0]

    def release(self):
        release_model(self.model)


@dataclass
class AudioResult:
    end_time: float          # audio-clock time of the end of the window
    embedding: np.ndarray
    voice_probability: float
    loudness_dbfs: float
    # (valence, arousal, dominance) on [-1, 1] from a voice model card's model (core/voice_model.py), NaN
    # for a dimension it does not give; () when the encoder gives no affect (every other encoder)
    affect: tuple = ()


@dataclass
class AudioChunkResult:
    windows: list            # AudioResult for every window this chunk completed
    time_jump: str | None = None   # one log line when this chunk confirmed a new time base
    bad_stamp: str | None = None   # one log line when it showed the chunk before it had a bad stamp
    gap: str | None = None         # one log line when it confirmed samples missing before the chunk before it


class AudioChunkError(ValueError):
    """A chunk that cannot be used (not mono, NaN/inf); it is dropped and the stream goes on."""


class RateMonitor:
    """Compares the samples that arrive with the time their stamps span, over a sliding window.

    A wrong AudioInfo (48 kHz stereo declared for 16 kHz mono data), a driver whose rate changes
    mid-stream, or heavy chunk loss all show as a measured rate far from the declared one. The
    window slides, so a mismatch is caught whenever it starts and clears when it ends.
    """

    def __init__(self, declared_rate: int, window_s: float = RATE_WINDOW_S):
        self.declared, self.window_s = declared_rate, window_s
        self._chunks = deque()   # (start stamp, samples)
        self.measured = None
        self.mismatch = None     # text while the rates disagree

    def reset(self):
        self._chunks.clear()
        self.measured = self.mismatch = None

    def add(self, start: float, samples: int):
        self._chunks.append((start, samples))
        while self._chunks and start - self._chunks[0][0] > self.window_s:
            self._chunks.popleft()
        span = start - self._chunks[0][0]
        if span < RATE_CHECK_AFTER_S:
            return
        # samples of every chunk but the newest, which starts at the end of the span
        self.measured = (sum(n for _, n in self._chunks) - samples) / span
        if abs(self.measured - self.declared) > RATE_MISMATCH * self.declared:
            self.mismatch = (f"audio arrives at about {self.measured:.0f} samples/s by its stamps, but AudioInfo "
                             f"declares {self.declared} Hz: the driver's sample_rate/channels/sample_format do not "
                             "describe the data, or chunks are being lost")
        else:
            self.mismatch = None


class AudioPipeline:
    """One audio stream at one declared format: chunks -> windows every hop -> embeddings."""

    def __init__(self, encoder, vad, sample_rate: int, hop_s: float = 0.04, window_s: float = WINDOW_S,
                 tolerance_s: float = 0.15, stamp_position: str = "start", jump_threshold_s: float = TIME_JUMP_S):
        if stamp_position not in STAMP_POSITIONS:
            raise ValueError(f"stamp_position '{stamp_position}' unknown; allowed: {', '.join(STAMP_POSITIONS)}")
        self.encoder, self.vad = encoder, vad
        self.input_rate, self.stamp_position = sample_rate, stamp_position
        self.resampler = StreamResampler(sample_rate, SAMPLE_RATE)
        # the clock counts the input's samples (resampling delays them, the clock must not see that)
        self.clock = ChunkClock(sample_rate, tolerance_s, jump_threshold_s)
        self.windower = AudioWindower(window_s, hop_s, clock=self.clock)
        self.rate = RateMonitor(sample_rate)
        self.counts = Counter()

    def push(self, mono: np.ndarray, stamp: float) -> AudioChunkResult:
        """Mono float32 chunk at the input rate, stamped at its first sample ('start', as
        audio_capture stamps) or just after its last one ('end', drivers that stamp on arrival).

        Raises AudioChunkError for NaN/inf or non-mono input (nothing of it is kept). Empty chunks,
        out-of-order chunks, bad stamps, gaps and time jumps are normal events: counted, never
        raised. Where a chunk goes is the clock's decision (audio_buffer.ChunkClock): a chunk whose
        stamp disagrees with the samples so far waits for the next chunk, so its windows may come
        one chunk later.
        """
        try:
            mono = as_mono(mono)
        except ValueError as err:
            self.counts["chunks_rejected"] += 1
            raise AudioChunkError(str(err)) from err
        if mono.size == 0:
            # Its stamp says nothing about where samples are; admitting it would make the next
            # chunk look out of order.
            self.counts["empty_chunks"] += 1
            return AudioChunkResult([])
        start = stamp - mono.size / self.input_rate if self.stamp_position == "end" else stamp
        result = AudioChunkResult([])
        for step in self.clock.admit(start, mono.size, mono):
            if step.kind == JUMPED:
                self.counts["time_jumps"] += 1
                result.time_jump = step.text
                self.rate.reset()
            elif step.kind == BAD_STAMP:
                self.counts["bad_stamps"] += 1
                result.bad_stamp = step.text
            elif step.kind == GAP:
                self.counts["gaps"] += 1
                self.counts["gaps_filled"] += step.fill > 0
                result.gap = step.text
            elif step.kind == STALE:
                self.counts["chunks_out_of_order"] += 1
            elif step.kind == NEW:
                self.resampler = StreamResampler(self.input_rate, SAMPLE_RATE)
                self.vad.reset()
                self.windower.restart()
            if step.kind in (NEW, APPEND):
                self.rate.add(step.chunk.start, step.chunk.n)
                result.windows += self._feed(step.chunk.payload)
            elif step.kind == FILL:
                self.counts["samples_filled"] += step.fill   # at the input rate
                result.windows += self._feed(np.zeros(step.fill, np.float32))
            elif step.kind == SKIP:      # a hole too long to fill: audio on both sides is unrelated
                self.resampler = StreamResampler(self.input_rate, SAMPLE_RATE)
                self.vad.reset()
                self.windower.skip(int(round(step.fill * SAMPLE_RATE / self.input_rate)))
        self.counts["embeddings"] += len(result.windows)
        return result

    def _feed(self, mono: np.ndarray) -> list:
        """The next samples of the stream (input rate) -> resampled, VAD, the windows they complete."""
        samples = self.resampler(mono)
        windows = self.windower.append(samples)
        self.vad(samples)
        out = []
        for w in windows:
            embedding, affect = self._embed(w.samples)
            out.append(AudioResult(w.end_time, embedding, self.vad.probability, loudness_dbfs(w.samples), affect))
        return out

    def _embed(self, samples) -> tuple:
        """(embedding, affect). eGeMAPS (egemaps.py) and voice model cards (voice_model.py) work on the
        samples; the other encoders on the log-mel window. Only a voice model gives affect."""
        if isinstance(self.encoder, VoiceModelEncoder):   # embedding and affect of one model call
            embedding, affect = self.encoder.run(samples)
            given = [v for d, v in zip(DIMENSIONS, affect) if d in self.encoder.spec.affect]
            if not (np.isfinite(embedding).all() and np.isfinite(given).all()):
                self.counts["voice_model_non_finite"] += 1     # published as the model gave it; health WARNs
            return embedding, affect
        return self.encoder(samples if getattr(self.encoder, "input", "") == "samples" else log_mel(samples)), ()


# Chunks this long (by their stamps) after the first one may come before the first AudioInfo: a
# driver or a replayed bag starts both at once and the latched AudioInfo can arrive a little later.
INFO_GRACE_S = 1.0


class AudioStream:
    """What the audio node runs: the format from AudioInfo (which may come late, change, or be
    wrong) and one AudioPipeline per format, with what is wrong in words for diagnostics."""

    def __init__(self, encoder, vad, **pipeline_options):
        self.encoder, self.vad, self.options = encoder, vad, pipeline_options
        self.format = None
        self.pipeline = None
        self.format_problem = None
        self.counts = Counter()
        self._reported = Counter()
        self._first_stamp = None      # of the first chunk, for the start-up grace
        self._had_format = False

    def set_format(self, fmt) -> bool:
        """A valid AudioInfo (conversions.AudioFormat); True if it changed the stream."""
        self.format_problem, self._had_format = None, True
        if fmt == self.format:
            return False
        self.format = fmt
        self.vad.reset()
        self.pipeline = AudioPipeline(self.encoder, self.vad, fmt.sample_rate, **self.options)
        return True

    def reject_format(self, reason: str):
        """An AudioInfo that cannot be used: no audio is processed until a good one arrives."""
        self.format, self.pipeline, self.format_problem = None, None, reason

    def release(self):
        if hasattr(self.encoder, "release"):
            self.encoder.release()
        self.pipeline = None

    def drop_without_info(self, stamp: float | None = None) -> bool:
        """A chunk arrived before any usable AudioInfo: counted, nothing else can be done with it. True
        if that is the expected start-up case (`chunks_before_info`: no AudioInfo seen yet and within
        INFO_GRACE_S of the first chunk's stamp), False if it is a fault (`chunks_without_info`)."""
        if self._first_stamp is None:
            self._first_stamp = stamp
        expected = (not self._had_format and self.format_problem is None and stamp is not None
                    and 0.0 <= stamp - self._first_stamp < INFO_GRACE_S)
        self.counts["chunks_before_info" if expected else "chunks_without_info"] += 1
        return expected

    def push(self, mono: np.ndarray, stamp: float) -> AudioChunkResult:
        if self.pipeline is None:
            self.drop_without_info()
            return AudioChunkResult([])
        return self.pipeline.push(mono, stamp)

    def counters(self) -> dict:
        out = Counter(self.counts)
        if self.pipeline is not None:
            out.update(self.pipeline.counts)
        return dict(out)

    def health(self) -> tuple[int, str]:
        """(level, message) now; 'since the last call' for the counted problems."""
        counts = self.counters()
        new = {k: counts.get(k, 0) - self._reported.get(k, 0) for k in counts}
        self._reported = Counter(counts)
        if self.format_problem:
            return ERROR, self.format_problem
        if new.get("chunks_without_info", 0):
            return ERROR, ("audio arrives but no usable audio_info yet: chunks are dropped (audio_info must be "
                           "published transient-local, as audio_capture does; check the topic remapping)")
        if self.pipeline is not None and self.pipeline.rate.mismatch:
            return ERROR, self.pipeline.rate.mismatch
        if new.get("voice_model_non_finite", 0):
            return WARN, (f"the voice model gave NaN/inf in {new['voice_model_non_finite']} windows (published as it "
                          "gave them; the fusion leaves such values out): check the card's input and normalisation")
        if new.get("chunks_rejected", 0):
            return WARN, f"{new['chunks_rejected']} audio chunks rejected (NaN/inf samples; see log)"
        if new.get("empty_chunks", 0):
            return WARN, f"{new['empty_chunks']} audio chunks without samples (driver sends empty messages)"
        if new.get("time_jumps", 0):
            return WARN, "audio stamps jumped (looping bag, clock step): stream restarted"
        if new.get("gaps", 0):
            return WARN, (f"{new['gaps']} gaps in the audio (chunks lost or dropped): up to gap_tolerance filled with "
                          "silence, longer ones restart the stream")
        if new.get("bad_stamps", 0):
            return WARN, f"{new['bad_stamps']} audio chunks with a bad stamp (placed by their neighbours' stamps)"
        return OK, "ok"
