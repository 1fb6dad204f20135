"""What emo_eval compares, on AffectFrames as the pipelines make them (no media: fast): which track an
annotation is compared with, the warnings a reader must see, scores that cannot be computed, and
annotation times in another unit. test_eval_who.py runs the same on a real recording."""
import numpy as np
import pytest

from emo_perception.conversions import AffectFrame
from emo_perception.core.fusion_pipeline import FusionStep, PersonAffect
from emo_perception.eval.evaluate import SessionResult, evaluate
from emo_perception.recordings.annotations import AnnotationError, Annotations

T0 = 1000.0
STEPS = 250                      # 10 s at 25 Hz: person f0 alone for 0..6 s, f1 alone after
SWITCH = 150


def _session(voice_only=False) -> SessionResult:
    frames = []
    for k in range(STEPS):
        t = T0 + k * 0.04
        if voice_only:
            people = [PersonAffect("", 0.0, 0.1 + 0.001 * k, 0.2, False, True)]
        elif k < SWITCH:   # f0 smiles steadily, on the left
            people = [PersonAffect("f0", 0.4 + 0.05 * np.sin(k / 10), 0.2, 0.5, True, False, (100, 50, 80, 80))]
        else:              # f1 frowns, on the right
            people = [PersonAffect("f1", -0.5 + 0.05 * np.sin(k / 7), 0.3, 0.5, True, False, (400, 50, 80, 80))]
        frames.append(AffectFrame(FusionStep(t, "camera", people), "prior", "prior@test"))
    return SessionResult("session_a", frames, T0)


def _annotation(valence, arousal=None, person="", times=None) -> Annotations:
    t = np.arange(STEPS) * 0.04 if times is None else times
    v = np.broadcast_to(np.asarray(valence, np.float64), t.shape).copy()
    a = 0.2 * np.cos(t) if arousal is None else np.broadcast_to(np.asarray(arousal, np.float64), t.shape).copy()
    return Annotations("gold.csv", {person: {"time": t, "valence": v, "arousal": a}})


def _run(ann, person=None, result=None):
    r = result or _session()
    return evaluate([r], lambda _: ann, person)


def test_an_unnamed_annotation_is_compared_with_the_face_seen_longest_and_says_so():
    # the case: the annotation changes sign when the second person appears; the old rule (the
    # closest face at each step) followed both people and scored it 0.99
    t = np.arange(STEPS) * 0.04
    m = _run(_annotation(np.where(t < SWITCH * 0.04, 0.5, -0.5)))
    e = m["sessions"]["session_a"]
    (used,) = e["metrics"]["compared"]
    assert used["person"] == "(unnamed)" and used["track"] == "f0"
    assert used["rule"] == "the face track seen in most steps"
    assert used["spans_s"] == [[0.0, 5.96]]                       # seconds of media time
    assert e["per_person"]["(unnamed)"]["valence"]["n"] == SWITCH
    assert e["tracks"]["f1"]["spans_s"] == [[6.0, 9.96]]
    assert e["metrics"]["valence"]["ccc"] < 0.1                   # f0's wobble against a flat +0.5
    (seen,) = [w for w in m["warnings"] if "more than one person was in view" in w]
    assert "f0 0.00-5.96 s" in seen and "f1 6.00-9.96 s" in seen and "not compared: f1" in seen
    assert "--person" in seen
    # the pooled score names what it pooled
    assert m["pooled"]["compared"] == [{"session": "session_a", **used}]


def test_person_option_chooses_the_track_and_bad_choices_are_one_line():
    m = _run(_annotation(-0.5), ["f1"])
    (used,) = m["sessions"]["session_a"]["metrics"]["compared"]
    assert used["track"] == "f1" and used["rule"] == "chosen with --person" and used["spans_s"] == [[6.0, 9.96]]
    with pytest.raises(AnnotationError, match=r"--person f7: session session_a has no track 'f7'; its tracks are f0, "):
        _run(_annotation(0.0), ["f7"])
    with pytest.raises(AnnotationError, match="not annotated people"):
        _run(_annotation(0.0), ["bob=f1"])
    with pytest.raises(AnnotationError, match="applies to one bag"):
        evaluate([_session(), _session()], lambda _: _annotation(0.0), ["f0"])


def test_people_named_by_track_id_or_matched_left_to_right():
    t = np.arange(STEPS) * 0.04
    both = Annotations("gold.csv", {
        "f0": {"time": t[:SWITCH], "valence": np.full(SWITCH, 0.4), "arousal": np.full(SWITCH, 0.2)},
        "f1": {"time": t[SWITCH:], "valence": np.full(STEPS - SWITCH, -0.5), "arousal": np.full(STEPS - SWITCH, 0.3)}})
    m = _run(both)
    e = m["sessions"]["session_a"]
    assert not [w for w in m["warnings"] if "more than one person" in w]   # each face annotated by its id
    assert [(c["person"], c["track"], c["rule"]) for c in e["metrics"]["compared"]] == [
        ("f0", "f0", "annotated person named by its track id"), ("f1", "f1", "annotated person named by its track id")]
    named = Annotations("gold.csv", {"bob": both.series["f1"], "alice": both.series["f0"]})
    e = _run(named)["sessions"]["session_a"]
    assert {c["person"]: c["track"] for c in e["metrics"]["compared"]} == {"alice": "f0", "bob": "f1"}   # f0 is left
    mixed = Annotations("gold.csv", {"f0": both.series["f0"], "bob": both.series["f1"]})
    with pytest.raises(AnnotationError, match="name every person by track id, or none"):
        _run(mixed)


def test_scores_that_cannot_be_computed_are_warnings_and_nothing_scored_is_marked():
    one = _annotation(0.3, times=np.array([2.0]))
    m = _run(one)
    assert m["scored"] is False and m["sessions"]["session_a"]["metrics"]["valence"]["ccc"] is None
    assert any("valence: not scored: 1 step where the prediction and the annotation both have a value" in w
               for w in m["warnings"])
    flat = _run(_annotation(0.5), ["f0"])      # a constant annotation: PCC is undefined, not 0
    assert flat["scored"] is True and flat["sessions"]["session_a"]["metrics"]["valence"]["pcc"] is None
    assert any("valence: PCC undefined: the annotation is constant over the 150 compared steps" in w
               for w in flat["warnings"])
    # a voice heard with nobody in view is what an unnamed annotation is compared with
    voice = _run(_annotation(0.0, arousal=np.linspace(0, 0.5, STEPS)), result=_session(voice_only=True))
    assert voice["sessions"]["session_a"]["metrics"]["compared"][0]["track"] == "voice"


def test_annotation_times_in_milliseconds_or_epoch_seconds_are_one_line_errors():
    ms = _annotation(0.1, times=np.arange(STEPS) * 40.0)          # 0 ... 9960
    with pytest.raises(AnnotationError, match=r"gold.csv: annotation times run 0..9960 but the recording covers "
                                              r"0..9.96 s: they look like milliseconds"):
        _run(ms)
    epoch = _annotation(0.1, times=1.7e9 + np.arange(STEPS) * 0.04)
    with pytest.raises(AnnotationError, match="a different time base"):
        _run(epoch)


def test_a_10_hz_annotation_keeps_every_sample_half_a_grid_step_away():
    """10 Hz: every other sample sits exactly half a 25 Hz step from the grid (float noise decided)."""
    import numpy as np

    from emo_perception.core.alignment import PERIOD
    from emo_perception.eval.evaluate import pair
    pred_t = np.arange(0, 8.0, PERIOD)
    gold_t = np.round(np.arange(4.0, 8.0 + 1e-9, 0.1), 6)
    pred = {"time": pred_t, "valence": np.sin(pred_t), "arousal": np.cos(pred_t)}
    gold = {"time": gold_t, "valence": np.sin(gold_t), "arousal": np.cos(gold_t)}
    assert len(pair(pred, gold)["valence"][0]) == len(gold_t) - 1      # 8.0 is past the last prediction
