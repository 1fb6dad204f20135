"""emo_train's fusion stage on MediaPipe's 52 blendshapes (face_feature: blendshapes, issue 24 item 2):
extracted with the landmarker, named in the card, run by the fusion node's pipeline on the faces'
blendshapes, and refused, in one line, on faces that carry none."""
import json
import shutil

import numpy as np
import pytest

from emo_perception.cli import train as emo_train


@pytest.mark.media
def test_the_fusion_stage_trains_on_blendshapes_and_the_pipeline_refuses_faces_without_them(generated_set, tmp_path):
    from emo_perception.core.face_landmarks import BLENDSHAPE_NAMES
    from emo_perception.core.face_pipeline import FaceResult
    from emo_perception.core.fusion_pipeline import FaceFrame, ModelIdMismatch
    from emo_perception.runtime.build import build_fusion_pipeline
    from emo_perception.runtime.config import FusionConfig

    root = tmp_path / "lab"
    for name in ("session_00", "session_03"):
        shutil.copytree(generated_set / "lab" / name, root / name)
    (root / "splits.csv").write_text("session,split\nsession_00,train\nsession_03,val\n")
    out = tmp_path / "runs"
    args = ["fusion", "--quiet", "--data", f"lab:{root}", "--set", f"out_dir={out}", "--set", f"cache_dir={out}/cache",
            "--set", "face_feature=blendshapes", "--set", "face_fps=5", "--set", "max_steps=4",
            "--set", "audio_delay=0.084",
            "--set", "batch_size=2", "--set", "chunk_s=4"]
    assert emo_train.main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    card_path = out / "export" / "fusion_gru.json"
    args = json.loads(card_path.read_text())["model_args"]
    assert args["face_feature"] == "blendshapes" and args["face_dim"] == len(BLENDSHAPE_NAMES)
    assert args["face_model_id"].startswith("face_blendshapes@") and args["audio_delay"] == 0.084
    # the export ran in the fusion node's pipeline on the cached blendshapes, the audio placed 84 ms later as
    # in training, and scores what training scored
    assert abs(s["baselines"]["gru_runtime"]["ccc_mean"] - s["val"]["ccc_mean"]) < 0.05, s

    pipeline = build_fusion_pipeline(FusionConfig(mode="gru", fusion_model=str(card_path), audio_delay=0.084))
    face = FaceResult("f0", (10, 10, 50, 50), 0.9, 1, np.zeros(128, np.float32), np.full(7, 1 / 7, np.float32),
                      0.0, 0.0, blendshapes=np.zeros(len(BLENDSHAPE_NAMES), np.float32))
    assert pipeline.add_face(FaceFrame(1000.0, "camera", "any_face_model", [face], 640, "circumplex",
                                       BLENDSHAPE_NAMES)).accepted
    with pytest.raises(ModelIdMismatch, match=r"trained on MediaPipe's 52 blendshapes, but the face embeddings "
                                              r"carry none \(the face node's face_landmarks is false\)"):
        pipeline.add_face(FaceFrame(1000.1, "camera", "any_face_model", [face], 640))
    assert pipeline.counts["face_model_mismatch"] == 1
    pipeline.release()
    # the card says which audio delay it was trained with: another is refused at start-up
    from emo_perception.runtime.params import ConfigError
    from emo_perception.training.config import TrainConfig

    with pytest.raises(ConfigError, match=r"parameter 'audio_delay' is 0, but the fusion model '.+' was trained "
                                          r"with audio 0.084 s before each step; allowed: 0.084 "):
        build_fusion_pipeline(FusionConfig(mode="gru", fusion_model=str(card_path)))
    # a face model the GRU would never see is a setting that cannot take effect
    cfg = TrainConfig(data=[{"root": str(root), "format": "lab"}], face_feature="blendshapes", face_model="x.json")
    with pytest.raises(ConfigError, match=r"parameter 'face_model' is 'x.json', but with face_feature 'blendshapes'"):
        cfg.check("fusion")
