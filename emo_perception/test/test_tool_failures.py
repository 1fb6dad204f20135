"""Errors reach the user, fast: emo_eval says why there is nothing to compare (the problems the
pipelines recorded, grouped by reason), and the tools that start nodes print the nodes' first error
line and give up within seconds of it instead of waiting out a timeout."""
import csv
import subprocess
import sys
import time

import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo

from emo_perception import conversions
from emo_perception.cli import evaluate as emo_eval
from emo_perception.eval.bags import write_bag
from emo_perception.eval.failures import error_line, problem_lines
from emo_perception.eval.live import NodeProcess, NodesFailed
from media import demo_frame, speech_16k

SECONDS, FPS, CHUNK = 1.2, 10.0, 1024


def _camera_and_microphone_bag(path):
    """SECONDS of a real face (raw Image) and real speech (audio_capture-style chunks); no video encoding."""
    frame, speech = demo_frame(), speech_16k(SECONDS)
    recs = [("/audio_info", "audio_common_msgs/msg/AudioInfo", 0,
             AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave"))]
    for k in range(int(SECONDS * FPS)):
        msg = conversions.rgb_to_image(frame)
        msg.header.stamp = conversions.seconds_to_stamp(100.0 + k / FPS)
        recs.append(("/image", "sensor_msgs/msg/Image", int(k / FPS * 1e9), msg))
    for k in range(len(speech) // CHUNK):
        msg = AudioDataStamped()
        msg.header.stamp = conversions.seconds_to_stamp(100.0 + k * CHUNK / 16000)
        msg.audio.data = conversions.mono_to_audio_bytes(speech[k * CHUNK:(k + 1) * CHUNK])
        recs.append(("/audio_stamped", "audio_common_msgs/msg/AudioDataStamped", int((k + 1) * CHUNK / 16e3 * 1e9),
                     msg))
    write_bag(path, sorted(recs, key=lambda r: r[2]))
    return path


def test_problems_are_grouped_by_reason_in_order_of_first_occurrence_with_counts():
    problems = [("face_model_mismatch", "face embeddings come from 'x@1'")] * 3 + \
        [("audio_model_mismatch", "audio embeddings come from 'y@1'"), ("face_model_mismatch", "other text")]
    assert problem_lines(problems) == ["face_model_mismatch (4x): face embeddings come from 'x@1'",
                                       "audio_model_mismatch (1x): audio embeddings come from 'y@1'"]
    many = [(f"r{k}", "t") for k in range(7)]
    assert problem_lines(many, limit=5)[-1] == "and 2 more reason(s): r5, r6"
    assert problem_lines([]) == []
    # a node's log line, the timestamp dropped; anything else is not an error line
    assert error_line("[ERROR] [1796121677.596051821] [face_embedding_node]: configure failed: parameter "
                      "'processing_rate' is 500.0; allowed: 0.1 to 120.0") == \
        "[ERROR] [face_embedding_node]: configure failed: parameter 'processing_rate' is 500.0; allowed: 0.1 to 120.0"
    assert error_line("[ERROR] emo_perception_all: params file 'x' does not exist") == \
        "[ERROR] emo_perception_all: params file 'x' does not exist"
    assert error_line("[INFO] [1.0] [fusion_node]: fusion mode 'prior'") is None
    assert error_line("an [ERROR] inside a line") is None


def test_emo_eval_says_why_a_fusion_model_trained_on_other_embeddings_gives_nothing(bundles, tmp_path, capsys):
    bag = _camera_and_microphone_bag(tmp_path / "bag")
    params = tmp_path / "gru.yaml"       # the fusion card names face_model_id f@1, audio_model_id a@2
    params.write_text("fusion_node:\n  ros__parameters:\n    mode: gru\n"
                      f"    fusion_model: {bundles['fusion_gru'].path}\n")
    gold = tmp_path / "gold.csv"
    with open(gold, "w", newline="") as f:
        csv.writer(f).writerows([["time", "valence", "arousal"]] + [[k * 0.04, 0.5, 0.1] for k in range(50)])
    for extra in (["--annotations", str(gold)], []):    # with annotations and without
        code = emo_eval.main([str(bag), "--params-file", str(params), "--report", str(tmp_path / "r"), "--quiet",
                              *extra])
        err = capsys.readouterr().err
        assert code == 1, err
        lines = [line for line in err.splitlines() if "no predictions; the pipelines reported:" in line]
        assert lines, err
        # the nodes' own counter name and text, counted: the first line says the cause
        assert lines[0].startswith(f"emo_eval: {bag}: no predictions; the pipelines reported: face_model_mismatch (")
        assert "f@1" in lines[0] and "these are not fused" in lines[0], lines[0]
        assert any(line.split("reported: ")[1].startswith("audio_model_mismatch (") and "a@2" in line
                   for line in lines), lines
        if extra:
            assert "no predictions to compare" in err


def _watched(tmp_path, code: str) -> NodeProcess:
    log = tmp_path / "nodes.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=f, stderr=subprocess.STDOUT)
    return NodeProcess(proc, str(log))


def _until_failure(watch, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        why = watch.failure()
        if why:
            return why
        time.sleep(0.05)
    raise AssertionError("no failure seen")


def test_a_watched_process_fails_on_its_first_error_line_or_its_exit(tmp_path):
    # an error line while it runs: the first one, at once, and stop() does not wait out its grace
    watch = _watched(tmp_path, "import time; print('[INFO] [1.0] [a]: fine'); "
                               "print('[ERROR] [2.0] [face_embedding_node]: configure failed: bad', flush=True); "
                               "print('[ERROR] [3.0] [b]: later'); time.sleep(60)")
    why = _until_failure(watch)
    assert why == f"[ERROR] [face_embedding_node]: configure failed: bad (node log: {watch.log_path})"
    assert watch.failure(errors_fatal=False) is None                      # active nodes: only an exit is fatal
    with pytest.raises(NodesFailed, match=r"configure failed: bad"):
        watch.check()
    began = time.monotonic()
    watch.stop()
    assert watch.exited() and time.monotonic() - began < 5
    # an exit without an error line: its code and its last output line (a traceback's last line)
    watch = _watched(tmp_path, "import sys; print('starting'); sys.stdout.write('boom: no module x'); sys.exit(3)")
    why = _until_failure(watch)
    assert why == f"the nodes exited (code 3): last output: boom: no module x (node log: {watch.log_path})"


@pytest.mark.ros
def test_live_evaluation_stops_at_the_nodes_first_error_line(tmp_path):
    """A failure only the nodes find (a model card that is not there): the line, in seconds, not 60 s."""
    from emo_perception.eval.live import evaluate_live

    bag = _camera_and_microphone_bag(tmp_path / "bag")
    params = tmp_path / "missing.yaml"
    params.write_text(f"face_embedding_node:\n  ros__parameters:\n    face_model: {tmp_path / 'nope.json'}\n")
    began = time.monotonic()
    with pytest.raises(NodesFailed) as err:
        evaluate_live(bag, params, ready_timeout=120.0)
    took = time.monotonic() - began
    text = str(err.value)
    assert text.startswith("[ERROR] [face_embedding_node]: configure failed: ModelFileError: model card "
                           f"'{tmp_path / 'nope.json'}' does not exist"), text
    assert "(node log: " in text and "\n" not in text
    assert took < 15, took
