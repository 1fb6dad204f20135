"""Distil from any teacher (issue 22 item 2): `emo_train face --set teacher=<card>` trains the Jetson-sized
student to reproduce an imported teacher's valence/arousal and its expression probabilities on unlabeled
faces (lab recordings without annotations). The teacher is a stand-in shaped like HSEmotion's
enet_b0_8_va_mtl whose valence/arousal are learnable functions of the face (brightness, contrast); the
student's CCC against them on the held-out sessions' faces is >= 0.8, and its exported card loads in the
face pipeline, names the teacher's classes and is timed there (bench/bench_core.py times it too)."""
import json
import time

import numpy as np
import pytest

from emo_perception.cli import train as emo_train
from emo_perception.inference.import_model import HSEMOTION_8, import_face_model
from emo_perception.recordings.media import write_clip
from emo_perception.recordings.sample_media import background, place_face, talking_head
from emo_perception.runtime.build import build_face_pipeline
from emo_perception.runtime.config import FaceConfig
from model_cards import brightness_teacher

pytestmark = pytest.mark.media

FPS, SECONDS, SIZE = 10.0, 6.0, (320, 240)
VAL = ("s04", "s05")


def unlabeled_lab(root, sessions=6):
    """Lab recordings without annotations: one person whose lighting (gain) and contrast change every
    half second, the mouth corners with them; no annotations.csv anywhere, s04/s05 held out in splits.csv."""
    root.mkdir(parents=True)
    scenes = ("coffee", "chelsea", "rocket", "coins")
    for i in range(sessions):
        rng = np.random.default_rng(i)
        base = background(*SIZE, scenes[i % len(scenes)])
        frames = []
        for k in range(int(SECONDS * FPS)):
            if k % 5 == 0:       # every half second: 12 settings per session
                gain, contrast, smile = rng.uniform(0.55, 1.45), rng.uniform(0.5, 1.5), rng.uniform(-1, 1)
            frame = base.copy()
            place_face(frame, talking_head(0.0, bool(i % 2), smile=smile), (160 + 20 * np.sin(k / 7 + i), 120),
                       100 + 5 * np.sin(k / 5))
            f = frame.astype(np.float32)
            frames.append(np.clip(gain * (contrast * (f - f.mean()) + f.mean()), 0, 255).astype(np.uint8))
        (root / f"s{i:02d}").mkdir()
        write_clip(root / f"s{i:02d}" / "video.mp4", frames, FPS)
    (root / "splits.csv").write_text("session,split\n" + "".join(
        f"s{i:02d},{'val' if f's{i:02d}' in VAL else 'train'}\n" for i in range(sessions)))
    return root


def test_the_student_reproduces_an_imported_teachers_valence_arousal_on_faces_it_did_not_train_on(tmp_path):
    teacher = import_face_model(brightness_teacher(tmp_path), preset="hsemotion-enet_b0_8_va_mtl")
    data = unlabeled_lab(tmp_path / "lab")
    started = time.monotonic()
    args = ["face", "--quiet", "--data", f"lab:{data}", "--set", f"teacher={teacher.path}",
            "--set", f"out_dir={tmp_path}/runs/{{stage}}", "--set", f"cache_dir={tmp_path}/cache",
            "--set", "augment=false", "--set", "epochs=5", "--set", "batch_size=16", "--set", "lr=0.001",
            "--set", "train_fps=10"]
    assert emo_train.main(args) == 0
    took = time.monotonic() - started
    summary = json.loads((tmp_path / "runs" / "face" / "summary.json").read_text())
    val = summary["val"]
    print(f"distilled in {took:.1f} s: {summary['train_faces']} train faces, {summary['val_faces']} held-out; "
          f"teacher CCC valence {val['teacher_ccc_valence']:.3f}, arousal {val['teacher_ccc_arousal']:.3f}, "
          f"agreement {val['teacher_agreement']:.3f}")
    assert summary["val_faces"] >= 100 and summary["val_sessions"] == 0      # no labels anywhere
    assert val["teacher_ccc_valence"] >= 0.8 and val["teacher_ccc_arousal"] >= 0.8, val

    card = json.loads((tmp_path / "runs" / "face" / "export" / "face_encoder.json").read_text())
    assert card["face"] == {"expression_labels": list(HSEMOTION_8)}
    assert card["outputs"][1] == {"name": "expression_logits", "shape": ["batch", 8], "dtype": "float32"}
    pipeline = build_face_pipeline(FaceConfig(face_model=summary["card"]))
    frame = background(*SIZE, "coffee").copy()
    place_face(frame, talking_head(0.0), (160, 120), 100)
    pipeline.process(frame, 0.0)
    t0 = time.perf_counter()
    for k in range(10):
        faces = pipeline.process(frame, 0.1 * (k + 1)).faces
    per_frame_ms = (time.perf_counter() - t0) * 100
    print(f"distilled student in the face pipeline (BlazeFace + student): {per_frame_ms:.1f} ms per frame")
    assert pipeline.expression_labels == HSEMOTION_8 and len(faces) == 1
    assert len(faces[0].expression_probabilities) == 8 and np.isfinite(faces[0].valence)


def test_still_images_get_the_imported_teachers_own_crops_and_valence_arousal(tmp_path):
    """AffectNet-style still images: the teacher runs on its own crops of each box (224x224 RGB here), the
    student's crops stay 64x64 grey, and the teacher's valence/arousal are kept as targets."""
    import types

    import cv2
    from skimage import data

    from emo_perception.core.face_model_io import face_model_io
    from emo_perception.inference.model_card import load_card
    from emo_perception.training.face_stage import crop_images
    from model_cards import hsemotion_like, stand_in_valence

    card = import_face_model(hsemotion_like(tmp_path), preset="hsemotion-enet_b0_8_va_mtl")
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), data.astronaut()[:, :, ::-1])
    boxes = [(170, 30, 110, 140), (150, 20, 150, 170)]
    images = [types.SimpleNamespace(path=path, box=b, roll=0.0, expression=-1, valence=np.nan, arousal=np.nan)
              for b in boxes]
    out = crop_images(images, card.path)
    assert out["crop"].shape == (2, 64, 64) and out["logits"].shape == (2, 8)
    crops = face_model_io(load_card(card.path)).crops(data.astronaut(), boxes)
    np.testing.assert_allclose(out["teacher_va"][:, 0], stand_in_valence(crops), atol=1e-5)
    np.testing.assert_allclose(out["teacher_va"][:, 1], -0.6, atol=1e-6)
