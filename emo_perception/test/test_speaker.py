"""Who is speaking: lip activity from keypoints, the attribution rule, the fusion's use of it, and the
measured accuracy on a generated two-person clip with one speaker (real faces, real speech)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from emo_perception.core.fusion_stream import FusionStreams
from emo_perception.core.lip_activity import LipActivity
from emo_perception.core.prior import PriorFusion
from emo_perception.core.speaker import VOICE_ONLY, SpeakerAttribution, SpeakerConfig
from emo_perception.runtime.build import build_detector
from emo_perception.runtime.config import FaceConfig
from emo_perception.tools.media_files import background, place_face, talking_head


def faces(**activity):
    return [SimpleNamespace(track_id=t, mouth_activity=a) for t, a in activity.items()]


def test_attribution_rule():
    s = SpeakerAttribution(SpeakerConfig(min_activity=0.04, margin=1.5, window_s=0.5))
    for k in range(5):
        s.add_frame(k * 0.066, faces(a=0.10, b=0.02, c=float("nan")))
    assert s.speaker(0.3, ["a", "b", "c"], 0.2) is None            # not voiced: everyone's context
    assert s.speaker(0.3, ["a", "b", "c"], 0.9) == "a"
    assert s.speaker(0.3, ["b"], 0.9) == VOICE_ONLY                 # b's lips are still: someone off camera
    assert s.speaker(0.3, [], 0.9) == VOICE_ONLY
    assert s.speaker(0.3, ["c"], 0.9) == "c"                         # one face, no lip information
    assert s.speaker(0.3, ["c", "d"], 0.9) == VOICE_ONLY             # two, none with lip information
    even = SpeakerAttribution()
    for k in range(5):
        even.add_frame(k * 0.066, faces(a=0.10, b=0.09))
    assert even.speaker(0.3, ["a", "b"], 0.9) == VOICE_ONLY          # no clear margin: not guessed
    assert s.speaker(2.0, ["a", "b"], 0.9) == VOICE_ONLY             # old activity has left the window


def test_prior_raises_only_the_speakers_arousal_and_reports_an_unattributed_voice_apart():
    prior = PriorFusion()
    va = {"a": np.array([0.0, 0.0], np.float32), "b": np.array([0.0, 0.0], np.float32)}
    out = {o.track_id: o for o in prior.step(0.0, va, (1.0, -20.0), "a")}
    assert out["a"].arousal > 0.2 and out["b"].arousal == 0.0 and "" not in out
    out = {o.track_id: o for o in prior.step(0.04, va, (1.0, -20.0), VOICE_ONLY)}
    assert out["a"].arousal == out["b"].arousal == 0.0 and out[""].arousal > 0.2
    out = {o.track_id: o for o in prior.step(0.08, va, (0.1, -60.0), None)}
    assert out["a"].arousal == out["b"].arousal > 0.0           # not voiced: the (small) cue reaches both


def test_gru_streams_give_the_audio_only_to_the_speaker():
    seen = []

    def step(face, audio, mask, state):
        seen.append(mask.copy())
        b = face.shape[0]
        return np.zeros((b, 1, 2), np.float32), np.ones((b, 1, 1), np.float32), state

    streams = FusionStreams(step, (1, 4), 3, 2)
    f = {"a": np.ones(3, np.float32), "b": np.ones(3, np.float32)}
    ids = [o.track_id for o in streams.step(0.0, f, np.ones(2, np.float32), "b")]
    assert ids == ["a", "b"] and seen[-1][:, 0, 1].tolist() == [0.0, 1.0]
    ids = [o.track_id for o in streams.step(0.04, f, np.ones(2, np.float32), VOICE_ONLY)]
    assert ids == ["a", "b", ""] and seen[-1][:, 0, 1].tolist() == [0.0, 0.0, 1.0]
    streams.step(0.08, f, np.ones(2, np.float32), None)
    assert seen[-1][:, 0, 1].tolist() == [1.0, 1.0]


def test_lips_that_move_score_higher_than_a_still_mouth_in_a_moving_head():
    detector = build_detector(FaceConfig())
    lips = LipActivity()
    rng = np.random.default_rng(1)
    talking, still = [], []
    for k in range(20):
        frame = background(1280, 720)
        opening = [0.0, 0.8, 0.3, 1.0][k % 4]
        place_face(frame, talking_head(opening), (400 + rng.normal(0, 3), 330 + rng.normal(0, 3)), 110, 3)
        place_face(frame, talking_head(0.0, mirrored=True), (880 + rng.normal(0, 3), 330 + rng.normal(0, 3)), 110,
                   -3 + 2 * math.sin(k))
        dets = sorted(detector.detect(frame), key=lambda d: d.x)
        assert len(dets) == 2
        act = lips.update(frame, [("talker", dets[0].keypoints), ("listener", dets[1].keypoints)], k / 15)
        if k:
            talking.append(act["talker"])
            still.append(act["listener"])
    assert np.median(talking) > 3 * np.median(still) and np.median(talking) > SpeakerConfig.min_activity
    assert math.isnan(lips.update(frame, [("new", dets[0].keypoints), ("x", None)], 5.0)["new"])


@pytest.mark.parametrize("seed", [0, 3])    # 3: the clip with the most listener head motion of bench_speaker's five
def test_the_voice_goes_to_the_person_who_speaks(seed, tmp_path):
    from emo_perception.eval.speaker import attribution_on_clip

    r = attribution_on_clip(seconds=8.0, seed=seed, workdir=tmp_path)
    assert r["steps_with_two_faces"] > 0.9 * r["steps"], r
    assert r["voiced_steps"] > 50, r      # the real speech is voiced most of the time
    assert r["accuracy"] >= 0.9, r
    assert r["to_listener"] <= 0.02 * r["voiced_steps"], r
