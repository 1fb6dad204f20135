"""BlazeFace's dynamic batch: the shipped ONNX takes any batch, a batch of N answers as N single calls and as
the batch-1 graph the converter made before, and BlazeFaceDetector.detect_many finds what detect() finds."""
import cv2
import numpy as np
import onnx
import pytest

from emo_perception.cli import convert_blazeface
from emo_perception.core.face_detection import BlazeFaceDetector
from emo_perception.inference import load_card, load_model
from emo_perception.paths import resolve_model
from emo_perception.recordings.sample_media import astronaut_head, background, demo_frame, lfw_on_canvas, place_face

CARD = resolve_model("", "blazeface_full_range")
TOLERANCE = 1e-5        # float32 reassociation in batched convolutions; on this CPU the difference is 0


def session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2     # as OnnxRuntimeModel runs it
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def canvases(frames, size=(576, 320)) -> np.ndarray:
    """Frames letterboxed top-left into the detector's default canvas: (N, 3, H, W) in [-1, 1]."""
    out = []
    for rgb in frames:
        canvas = np.full((size[1], size[0], 3), 128, np.uint8)
        scale = min(size[0] / rgb.shape[1], size[1] / rgb.shape[0])
        small = cv2.resize(rgb, (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        canvas[:small.shape[0], :small.shape[1]] = small
        out.append(cv2.dnn.blobFromImage(canvas, 1.0 / 127.5, mean=(127.5, 127.5, 127.5)))
    return np.concatenate(out)


def scene(faces) -> np.ndarray:
    """A 1280x720 real scene with the astronaut's head at each (x, y, height, roll)."""
    frame = background(1280, 720)
    for x, y, height, roll in faces:
        place_face(frame, astronaut_head(), (x, y), height, roll)
    return frame


@pytest.fixture(scope="module")
def real_frames():
    from skimage import data

    return [data.astronaut(), lfw_on_canvas(data.lfw_subset()[3], 120), demo_frame(),
            scene([(400, 330, 110, 10), (900, 360, 90, -10)]), background(1280, 720, "rocket")]


def test_the_shipped_model_and_its_card_have_a_symbolic_batch():
    graph = onnx.load(str(CARD.with_suffix(".onnx"))).graph
    for tensor in list(graph.input) + list(graph.output):
        first = tensor.type.tensor_type.shape.dim[0]
        assert first.dim_param == "batch" and not first.HasField("dim_value"), tensor.name
    card = load_card(CARD)
    assert [spec["shape"][0] for spec in card.inputs + card.outputs] == ["batch"] * 3


def test_a_batch_answers_as_single_frames(real_frames):
    run = session(CARD.with_suffix(".onnx"))
    x = canvases(real_frames)
    regressors, logits = run.run(["regressors", "logits"], {"image": x})
    assert regressors.shape == (len(x), 80 * 144, 16) and logits.shape == (len(x), 80 * 144, 1)
    for i in range(len(x)):
        one_reg, one_logits = run.run(["regressors", "logits"], {"image": x[i:i + 1]})
        assert np.abs(one_reg - regressors[i:i + 1]).max() <= TOLERANCE
        assert np.abs(one_logits - logits[i:i + 1]).max() <= TOLERANCE


def test_the_dynamic_batch_model_answers_as_the_batch_1_graph(tmp_path_factory, real_frames):
    """The graph as converted before the batch was made dynamic (fully_convolutional alone) on the same
    frames, one per call, and the shipped one on all of them at once."""
    import tflite2onnx

    folder = tmp_path_factory.mktemp("batch1")
    tflite2onnx.convert(str(convert_blazeface.source_path()), str(folder / "raw.onnx"))
    batch1 = convert_blazeface.fully_convolutional(onnx.load(str(folder / "raw.onnx")))
    assert batch1.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    onnx.save(batch1, str(folder / "batch1.onnx"))
    old, new = session(folder / "batch1.onnx"), session(CARD.with_suffix(".onnx"))
    x = canvases(real_frames)
    regressors, logits = new.run(["regressors", "logits"], {"image": x})
    for i in range(len(x)):
        old_reg, old_logits = old.run(["regressors", "logits"], {"image": x[i:i + 1]})
        assert np.abs(old_reg - regressors[i:i + 1]).max() <= TOLERANCE
        assert np.abs(old_logits - logits[i:i + 1]).max() <= TOLERANCE
    assert logits[0].max() > 1.0      # the astronaut is there to be found (best anchor score > 0.73)


class CountingModel:
    """The ONNX Runtime model, counting its calls and the batch of each."""

    def __init__(self, model):
        self.model, self.card, self.batches = model, model.card, []

    def run(self, feeds):
        self.batches.append(len(feeds["image"]))
        return self.model.run(feeds)


def test_detect_many_finds_what_detect_finds_frame_by_frame(real_frames):
    model = CountingModel(load_model(CARD, "onnxruntime", threads=2))
    detector = BlazeFaceDetector(model)
    strip = np.zeros((1, 6000, 3), np.uint8)      # no face fits: detect() answers [] without the network
    frames = [*real_frames, strip, scene([(640, 360, 64, 0)]), scene([(300, 400, 256, 20)])]
    single = [detector.detect(f) for f in frames]
    assert model.batches == [1] * (len(frames) - 1)
    assert sum(map(len, single)) >= 5 and single[-3] == []     # faces in most frames, not in the strip
    model.batches.clear()
    assert detector.detect_many(frames, batch=3) == single
    assert model.batches == [3, 2, 2]       # the strip takes no place in its batch of three frames
    assert detector.detect_many(frames) == single
    assert detector.detect_many([]) == [] and detector.detect_many([strip]) == [[]]
    with pytest.raises(ValueError, match="at least 1"):
        detector.detect_many(frames, batch=0)
