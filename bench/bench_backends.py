"""Per-model latency, torch eager vs ONNX Runtime on this CPU, batch 1 and 4, as ratios from one run.
ONNX Runtime runs as the nodes configure it: worker threads sleep between runs (spin_wait=False),
which costs ~30 % latency back to back but no CPU between frames.

Prints JSON. Target (issue 4): ONNX Runtime >= 1.5x faster than torch for the face encoder.
"""
import json
import sys
import tempfile

import numpy as np
import torch

from common import MODELS, interleaved

from emo_perception.inference import load_card, load_model
from emo_perception.nets import checkpoint
from emo_perception.nets.audio_encoder import AudioEncoder
from emo_perception.nets.face_encoder import FaceEncoder
from emo_perception.nets.fusion_gru import FusionGRU
from emo_perception.inference.export import export


def inputs(card, batch, time=1):
    sizes = {"batch": batch, "time": time}
    return {s["name"]: np.random.default_rng(0).uniform(-1, 1, [sizes.get(d, d) for d in s["shape"]]).astype(np.float32)
            for s in card.inputs}


def main():
    torch.set_num_threads(2)
    tmp = tempfile.mkdtemp()
    cards = {"expression_teacher": str(MODELS / "expression_teacher.json")}
    for kind, model in [("face_encoder", FaceEncoder()), ("audio_encoder", AudioEncoder()),
                        ("fusion_gru", FusionGRU())]:
        checkpoint.save(f"{tmp}/{kind}.pt", model.eval(), kind)
        cards[kind] = export(f"{tmp}/{kind}.pt", tmp).path
    out = {"bench": "backends_cpu_2_threads", "models": {}}
    for kind, path in cards.items():
        card = load_card(path)
        ort_m, torch_m = load_model(path, "onnxruntime", threads=2), load_model(path, "torch", threads=2)
        for batch in (1, 4):
            x = inputs(card, batch)
            ms = interleaved({"torch": lambda: torch_m.run(x), "onnxruntime": lambda: ort_m.run(x)})
            out["models"][f"{kind}/batch{batch}"] = {**ms,
                                                     "speedup_ort_vs_torch": round(ms["torch"] / ms["onnxruntime"], 2)}
    fe = [out["models"][f"face_encoder/batch{b}"]["speedup_ort_vs_torch"] for b in (1, 4)]
    out["face_encoder_target_1.5x_met"] = min(fe) >= 1.5
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.exit(main())
