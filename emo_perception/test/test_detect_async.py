"""Issue 21: detect_async. A full-frame detection that is due while there are faces to follow runs in a
worker thread and the frame is followed meanwhile; the next frame looks around the new faces it found.
Real faces in 720p frames, the shipped BlazeFace and expression teacher, no ROS."""
import threading
import time

import numpy as np
import pytest

from emo_perception.core.face_detection import BlazeFaceDetector, HaarFaceDetector, region_detector
from emo_perception.core.face_pipeline import FacePipeline
from emo_perception.core.tracking import IouTracker, iou
from emo_perception.inference import load_model
from emo_perception.paths import resolve_model
from emo_perception.recordings.sample_media import astronaut_head, background, face_sources, place_face

W, H = 1280, 720


@pytest.fixture(scope="module")
def models():
    return (load_model(resolve_model("", "blazeface_full_range"), "onnxruntime", threads=2),
            load_model(resolve_model("", "expression_teacher"), "onnxruntime", threads=2))


def _pipeline(models, every=3, detect_async=True, detector=None):
    return FacePipeline(detector or BlazeFaceDetector(models[0]), models[1], IouTracker(), detect_every=every,
                        detect_async=detect_async)


def _frame(centres, sources=None, height=96):
    frame = background(W, H)
    sources = sources or [astronaut_head()] * len(centres)
    return frame, [place_face(frame, src, c, height, 8) for src, c in zip(sources, centres)]


def _done(pipe):
    """The worker stops; the models are the module's, shared by the next tests (not released)."""
    pipe.background.close()


class _SlowDetector:
    """A real BlazeFace whose full detections take `delay` s longer, and which records the threads that ran them."""

    def __init__(self, inner, delay):
        self.inner, self.delay, self.name, self.threads = inner, delay, inner.name, []

    def detect(self, rgb):
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        return self.inner.detect(rgb)


def test_a_frame_with_faces_to_follow_does_not_wait_for_the_full_detector(models):
    slow = _SlowDetector(BlazeFaceDetector(models[0]), delay=0.25)
    pipe = FacePipeline(slow, models[1], IouTracker(), detect_every=1, detect_async=True,
                        region_detector=region_detector(BlazeFaceDetector(models[0])))
    frame, (truth,) = _frame([(640, 360)])
    (first,) = pipe.process(frame, 10.0).faces      # nothing to follow yet: this frame waits for the detector
    took = []
    for k in range(1, 4):
        t = time.perf_counter()
        (face,) = pipe.process(frame, 10.0 + k / 15).faces
        took.append(time.perf_counter() - t)
        assert face.track_id == first.track_id and iou(face.box, first.box) > 0.8
    # each later frame started a full detection (0.25 s) and was followed meanwhile; it waited at most for
    # the previous frame's detection to finish, which ran while nothing else did (0.25 s, not 2 x 0.25)
    assert pipe.counts["full_detections"] == 4 and pipe.counts["region_detections"] == 3
    assert took[0] < 0.2 and max(took[1:]) < 0.4, took
    assert all(name.startswith("face_detection") for name in slow.threads), slow.threads
    _done(pipe)


def test_a_new_face_is_found_one_frame_after_its_full_detection_with_its_own_track(models):
    pipe = _pipeline(models, every=3)
    one, _ = _frame([(400, 360)])
    two, (_, newcomer) = _frame([(400, 360), (900, 360)], [astronaut_head(), face_sources()[0]])
    counts = []
    for k, frame in enumerate([one, two, two, two, two, two]):
        counts.append(len(pipe.process(frame, 10.0 + k / 15).faces))
    # frame 0: full (waited for); 1-2 followed (the newcomer is not looked for); 3: full in the worker, the
    # frame followed; 4: looks around what frame 3's detection found that no track followed
    assert counts == [1, 1, 1, 1, 2, 2], counts
    faces = pipe.process(two, 10.0 + 6 / 15).faces
    assert sorted(f.track_id for f in faces) == ["f0", "f1"]
    found = next(f for f in faces if f.track_id == "f1")
    assert iou(found.box, newcomer) > 0.5 and pipe.counts["new_face_regions"] == 1
    _done(pipe)


def test_the_worker_and_the_caller_give_the_same_faces_frame_for_frame(models):
    # which frame takes which answer depends on the frames only: what a replay in one thread gives is what
    # the node gave with the worker (offline equals live)
    frames = []
    for k in range(12):
        centres = [(300 + 15 * k, 340)] + ([(950 - 10 * k, 380)] if k >= 2 else [])
        frames.append(_frame(centres, [astronaut_head(), face_sources()[0]][:len(centres)])[0])
    threaded, inline = _pipeline(models), _pipeline(models)
    inline.background.threaded = False
    for k, frame in enumerate(frames):
        a, b = threaded.process(frame, 10.0 + k / 15).faces, inline.process(frame, 10.0 + k / 15).faces
        assert [(f.track_id, f.box) for f in a] == [(f.track_id, f.box) for f in b], k
        assert all(np.array_equal(x.embedding, y.embedding) for x, y in zip(a, b))
    assert threaded.counts == inline.counts and threaded.counts["new_face_regions"] >= 1
    _done(threaded), _done(inline)


def test_a_still_face_gets_the_same_region_and_keypoints_in_every_followed_frame(models):
    # the followed face keeps its region square while it serves, so its keypoints (lip activity's
    # registration) do not jitter with the track's prediction
    pipe = _pipeline(models)
    frame, _ = _frame([(640, 360)])
    keypoints = [pipe.process(frame, 10.0 + k / 15).faces[0].keypoints for k in range(7)]
    assert all(np.allclose(keypoints[1], kp, atol=1e-6) for kp in keypoints[2:]), keypoints
    # the mouth activity of a still face is nothing but noise
    faces = [pipe.process(frame, 10.0 + k / 15).faces[0] for k in range(7, 12)]
    assert max(f.mouth_activity for f in faces) < 0.01, [f.mouth_activity for f in faces]
    _done(pipe)


def test_a_time_jump_drops_the_pending_detection_and_the_regions(models):
    pipe = _pipeline(models, every=1)
    frame, _ = _frame([(640, 360)])
    pipe.process(frame, 10.0)
    pipe.process(frame, 10.0 + 1 / 15)
    assert pipe.camera.pending is not None and pipe.camera.squares
    for t in (500.0, 500.0 + 1 / 15):     # held, then confirmed as a new time base
        try:
            pipe.process(frame, t)
        except ValueError:
            pass
    # the frame after the jump had nothing to follow: a full detection it waited for, nothing pending, no
    # region kept, and nothing of the old time base looked for
    assert pipe.counts["time_jumps"] == 1 and pipe.camera.pending is None and not pipe.camera.squares
    assert pipe.counts["new_face_regions"] == 0
    assert [f.track_id for f in pipe.process(frame, 500.0 + 2 / 15).faces] == ["f1"]
    _done(pipe)


def test_a_backend_fault_in_the_worker_loses_no_frame_and_release_drops_what_is_queued(models):
    class Faulty:
        name = "faulty"

        def __init__(self, inner):
            self.inner, self.fail = inner, False

        def detect(self, rgb):
            if self.fail:
                raise RuntimeError("GPU fell off the bus")
            return self.inner.detect(rgb)

    faulty = Faulty(BlazeFaceDetector(models[0]))
    own_teacher = load_model(resolve_model("", "expression_teacher"), "onnxruntime", threads=2)   # released below
    pipe = FacePipeline(faulty, own_teacher, IouTracker(), detect_every=1, detect_async=True,
                        region_detector=region_detector(BlazeFaceDetector(models[0])))
    frame, _ = _frame([(640, 360)])
    pipe.process(frame, 10.0)
    faulty.fail = True
    for k in range(1, 4):     # each frame's full detection fails in the worker; the frames are still followed
        assert [f.track_id for f in pipe.process(frame, 10.0 + k / 15).faces] == ["f0"]
    assert pipe.counts["full_detections_failed"] == 2 and pipe.camera.pending is not None
    # and it is said, for the log and /diagnostics, with the frame that took the failed answer
    from emo_perception import conversions
    from emo_perception.runtime.handlers import FaceHandler

    msg = conversions.rgb_to_image(frame, "bgr8")
    msg.header.stamp.sec, msg.header.stamp.nanosec = 10, 300_000_000
    handled = FaceHandler(pipe).image(msg)
    (said,) = [p for p in handled.problems if p.reason == "full_detections_failed"]
    assert "GPU fell off the bus" in said.text and [f.track_id for f in handled.result.faces] == ["f0"]
    pipe.release()
    assert pipe.camera.pending is None


def test_a_detector_of_opencv_gets_a_region_detector_of_its_own(models):
    haar = HaarFaceDetector()
    regions = region_detector(haar)
    assert isinstance(regions, HaarFaceDetector) and regions is not haar and regions.args == haar.args
    pipe = _pipeline(models, detector=haar)
    assert pipe.background.threaded
    frame, (truth,) = _frame([(640, 360)], height=160)
    ids = {f.track_id for k in range(4) for f in pipe.process(frame, 10.0 + k / 15).faces}
    assert ids == {"f0"} and pipe.counts["region_detections"] >= 2
    _done(pipe)
