"""The full-frame detector off the frame's own path (FacePipeline's detect_async).

A frame's output then waits only for following its faces (region detections: ~1/20 of the full canvas's
pixels). The full detection of frame n runs in one worker thread while frame n is followed and published;
the next processed frame of that camera takes its answer (waiting for it if it is not done) and looks for
the faces it found that no track followed. Which frame takes which answer depends only on the frames, not
on the clock, so an offline replay gives what the node gave.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .tracking import iou

NEW_FACE_IOU = 0.3   # a full-frame detection overlapping a followed face's box less than this is a new face


@dataclass
class PendingDetection:
    """A full detection under way: its answer, the frame's size, and the followed faces' boxes in that frame."""
    answer: Future
    size: tuple
    followed_boxes: list


class BackgroundDetector:
    """Runs `detector.detect` in one worker thread, so calls never overlap (the detector keeps one canvas).
    `threaded` False runs each call at once in the caller (offline extraction, whose detector records its
    answers in call order): the same answers at the same frames."""

    def __init__(self, detector, threaded: bool = True, passes: tuple = ()):
        # `passes`: errors that must reach the caller (offline extraction's stale record), not be counted as a
        # failed detection of one frame
        self.detector, self.threaded, self.passes = detector, threaded, tuple(passes)
        self._pool = None

    def submit(self, rgb) -> Future:
        if self.threaded:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face_detection")
            return self._pool.submit(self.detector.detect, rgb)
        done = Future()
        try:
            done.set_result(self.detector.detect(rgb))
        except self.passes:
            raise
        except Exception as err:     # noqa: BLE001 - as the worker's Future holds it: whoever takes the answer
            done.set_exception(err)
        return done

    def detect(self, rgb) -> list:
        """A full detection the frame waits for (no face to follow): in the worker too, after what is queued."""
        return self.submit(rgb).result()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def new_faces(self, pending: PendingDetection, size: tuple) -> tuple[list, str | None]:
        """(the pending detection's faces that no followed face's box overlaps, or [] where its frame was another
        size than this one; the detector's error text or None). Waits for the answer."""
        try:
            found = pending.answer.result()
        except self.passes:
            raise
        except Exception as err:   # noqa: BLE001 - DetectionError, a backend fault: that frame was followed
            return [], str(err)    # anyway, and this one is not lost for it (counted: full_detections_failed)
        if tuple(size) != tuple(pending.size):
            return [], None
        return unfollowed(found, pending.followed_boxes), None


def unfollowed(found, boxes) -> list:
    """The detections of `found` that overlap none of the followed faces' `boxes` by NEW_FACE_IOU: new faces."""
    return [d for d in found if all(iou(d.box, b) < NEW_FACE_IOU for b in boxes)]
