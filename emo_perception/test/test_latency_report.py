"""Issue 21 item 5: a live run's latency is reported as the first-estimate time and the steady state
(after the first second) apart, so a user is not told "p95 362 ms" for a start-up effect; the report's
latency figure marks the first second (checked in headless Chromium). test_demo.py and test_bag_eval.py
check the same through emo_demo and emo_eval --live."""
import base64
import html
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from emo_perception_msgs.msg import Affect, AffectArray
from sensor_msgs.msg import Image

from emo_perception.eval.evaluate import SessionResult, evaluate
from emo_perception.eval.latency import STARTUP_S, LiveLatency, describe, merged
from emo_perception.eval.live import measured_latency
from emo_perception.eval.report import write_report

FPS = 30.0
START = 100.0                     # the first image's stamp (s) and its publication time (wall, s)
STARTUP_MS, STEADY_MS = 360.0, 40.0   # what the nodes take in the first second, and after it


def _to_stamp(t):
    from builtin_interfaces.msg import Time
    return Time(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))


def _run(seconds=4.0, first_face_s=0.25):
    """What a live run records: images published at 30 Hz; an AffectArray per 25 Hz step, with a face
    from `first_face_s` on, arriving STARTUP_MS after its image in the first second and STEADY_MS after."""
    published, received = [], []
    for k in range(int(seconds * FPS)):
        img = Image()
        img.header.stamp = _to_stamp(START + k / FPS)
        published.append(("/image", img, START + k / FPS))
    for k in range(int(seconds * 25)):
        t = START + k * 0.04
        msg = AffectArray()
        msg.header.stamp = _to_stamp(round(t * FPS) / FPS)     # the stamp of the image it was computed from
        if t - START >= first_face_s:
            msg.people.append(Affect(track_id="f0", modalities=Affect.MODALITY_FACE))
        late = STARTUP_MS if t - START < STARTUP_S else STEADY_MS
        received.append((msg, round(t * FPS) / FPS + late / 1000))
    return published, received


def test_the_first_second_and_the_first_estimate_are_reported_apart_from_the_steady_state():
    lat = measured_latency(*_run())
    s = lat.summary()
    # old: one p50/p95 over every message; the first second's 360 ms ruled the p95
    assert s["steady_state"]["p50"] == pytest.approx(STEADY_MS, abs=0.2)
    assert s["steady_state"]["p95"] == pytest.approx(STEADY_MS, abs=0.2) and s["steady_state"]["n"] == 75
    assert s["first_second"]["p95"] == pytest.approx(STARTUP_MS, abs=0.2) and s["first_second"]["n"] == 18
    # steps 0.28 .. 0.96 s have a face in the first second (18), 1.00 .. 3.96 s after it (75); the first
    # AffectArray with a face: stamped 0.2667 s (the image of the 0.28 s step), 360 ms later
    assert s["first_estimate_ms"] == pytest.approx((8 / FPS) * 1000 + STARTUP_MS, abs=0.5)
    assert s["steady_after_s"] == STARTUP_S
    line = describe(s)
    assert line.startswith(f"first estimate with a face {s['first_estimate_ms']:.1f} ms after the first camera image")
    assert f"(after the first 1 s) p50 {STEADY_MS:.1f} ms, p95 {STEADY_MS:.1f} ms over 75 messages" in line
    assert f"the first second (start-up): p50 {STARTUP_MS:.1f} ms" in line


def test_nothing_after_the_first_second_or_no_face_says_so():
    short = measured_latency(*_run(seconds=0.8)).summary()
    assert short["steady_state"] == {"p50": None, "p95": None, "n": 0}
    assert "not measured (no estimate with a face after the first second)" in describe(short)
    never = measured_latency(*_run(first_face_s=99.0))
    assert len(never) == 0 and never.summary()["first_estimate_ms"] is None
    assert describe(never.summary()).startswith("no estimate with a face arrived")
    assert measured_latency([], _run()[1]).summary()["first_estimate_ms"] is None    # no camera image published
    both = merged([measured_latency(*_run()), LiveLatency([1.5], [0.05], 0.9)])
    assert len(both) == 94 and both.first_estimate_s == pytest.approx(0.9)


def _figures(page: str) -> dict:
    return {html.unescape(alt): base64.b64decode(data) for alt, data in
            re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]*)"', page)}


def _pixels_of(png: bytes, rgb, tol=12) -> int:
    from PIL import Image as PILImage
    img = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(img - np.array(rgb)).max(axis=-1) <= tol).sum())


RED, PURPLE = (214, 39, 40), (148, 103, 189)     # tab:red (the first second), tab:purple (steady state)


@pytest.mark.media
def test_the_report_marks_the_first_second_and_renders_in_chromium(tmp_path):
    lat = measured_latency(*_run())
    r = SessionResult("bag", [], START)
    metrics = evaluate([r], lambda _: None)
    page_path = write_report(tmp_path / "r", [r], metrics, lambda _: None, {"bag": lat}, title="live")
    page = page_path.read_text()
    s = lat.summary()
    assert html.escape(describe(s)) in page
    (fig,) = [png for c, png in _figures(page).items() if c.startswith("Latency of the live run")]
    assert _pixels_of(fig, RED) > 200 and _pixels_of(fig, PURPLE) > 200     # both parts, in their colours
    assert "first estimate</i>: from publishing the first camera image" in page      # defined
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it as root)")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--no-first-run", f"--screenshot={shot}", "--window-size=1000,2400", page_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    png = shot.read_bytes()
    assert _pixels_of(png, RED) > 100 and _pixels_of(png, PURPLE) > 100
