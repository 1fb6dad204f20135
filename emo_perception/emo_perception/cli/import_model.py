"""emo_import_model: a face model you downloaded (ONNX) -> a model card the face node loads.

    emo_import_model enet_b0_8_va_mtl.onnx --preset hsemotion-enet_b0_8_va_mtl
    emo_import_model enet_b2_8.onnx --preset hsemotion-enet_b2_8 --out models/hsemotion_b2_8.json
    emo_import_model emonet_8.onnx --preset emonet-8          # exported with EmoNet's own code (docs/face_models.md)
    emo_import_model my_model.onnx --input-size 112 --channel-order bgr --mean 0.5 0.5 0.5 --std 0.5 0.5 0.5
        --outputs logits:out[0:7],valence:out[7],arousal:out[8] --classes angry disgust fear happy sad surprise
        neutral                                                  (one line: the generic form)

The ONNX file is checked against the preset or the arguments (input and output names, ranks and sizes,
one run on a blank batch) before the card is written; then `-p face_model:=<card>` runs it in the face
node: its own valence/arousal where it has them, its expression probabilities under its class names.
Nothing is downloaded or copied; docs/face_models.md says where each model comes from and under which terms.

A voice model (ONNX: 16 kHz samples or a log-mel patch -> embedding and/or valence, arousal, dominance)
becomes a voice model card the audio node loads as `audio_model` (docs/voice_models.md):

    emo_import_model w2v2-L-robust-12/*.onnx --preset audeering-w2v2-dim --out models/w2v2_dim.json
    emo_import_model my_voice.onnx --voice-input waveform --window 1 --hop 0.25 --normalisation none
        --outputs embedding:emb,valence:va[0],arousal:va[1] --range -1 1        (one line: the generic form)
"""
from __future__ import annotations

import argparse
import json
import sys

from ..inference.import_model import OUTPUTS_HELP, PRESETS, import_face_model
from ..inference.voice_card import VOICE_OUTPUTS_HELP, VOICE_PRESETS, import_voice_model


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="emo_import_model", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("onnx", help="the downloaded or exported face model (.onnx)")
    ap.add_argument("--preset", choices=sorted({**PRESETS, **VOICE_PRESETS}),
                    help="a published model's conventions (else the generic form)")
    ap.add_argument("--out", help="where to write the card (default: beside the ONNX, <stem>.json)")
    ap.add_argument("--name", help="the model's name in its model_id (default: the ONNX file's stem)")
    ap.add_argument("--input", dest="input_name", help="the image input's name (default: the model's one input)")
    ap.add_argument("--input-size", type=int, help="crop side S of the (N, C, S, S) input (default: the preset's, "
                                                   "else the model's)")
    ap.add_argument("--channel-order", choices=("rgb", "bgr", "grey"), help="channel order of the input")
    ap.add_argument("--mean", type=float, nargs="+", help="per-channel mean, on pixels / 255")
    ap.add_argument("--std", type=float, nargs="+", help="per-channel std, on pixels / 255")
    ap.add_argument("--crop-margin", type=float, help="share of the face box added on each side before the square "
                                                      "crop (presets: 0, the box as the detector gives it)")
    ap.add_argument("--outputs", help=f"face models: {OUTPUTS_HELP}; {VOICE_OUTPUTS_HELP}")
    ap.add_argument("--classes", nargs="+", help="the expression logits' class names, in order")
    ap.add_argument("--terms", help="where the weights come from and under which terms (written into the card)")
    voice = ap.add_argument_group("voice models (a voice preset, or --voice-input: the generic form; "
                                  "docs/voice_models.md)")
    voice.add_argument("--voice-input", choices=("waveform", "log_mel"), help="what the model takes: 16 kHz samples or "
                                                                              "the front end's log-mel patch")
    voice.add_argument("--window", type=float, help="seconds of audio per model call")
    voice.add_argument("--hop", type=float, help="seconds between calls (the audio node's hop)")
    voice.add_argument("--normalisation", choices=("none", "zero_mean_unit_var", "mean_std"),
                       help="waveform: none | zero_mean_unit_var; log_mel: none | mean_std (--mean, --std)")
    voice.add_argument("--range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                       help="the model's valence/arousal/dominance values that mean -1 and +1 (default -1 1)")
    return ap


def main_voice(a) -> int:
    try:
        card = import_voice_model(a.onnx, a.out, a.preset, a.name, a.input_name, a.voice_input, a.window, a.hop,
                                  a.normalisation, a.outputs, a.range, a.mean, a.std, a.terms)
    except (FileNotFoundError, ValueError, RuntimeError) as err:   # ModelFileError, VoiceImportError
        print(f"emo_import_model: {err}", file=sys.stderr)
        return 1
    audio = card.audio
    print(json.dumps({"card": card.path, "model_id": card.model_id,
                      "gives": [k for k in ("embedding", "valence", "arousal", "dominance") if audio.get(k)],
                      "audio_embedding_node": {"audio_model": card.path, "window": audio["window_s"],
                                               "hop": audio["hop_s"]},
                      "fusion_node": {"audio_hop": audio["hop_s"]}, "terms": audio["terms"]}, indent=2))
    return 0


def main(argv=None):
    a = parser().parse_args(argv)
    if a.preset in VOICE_PRESETS or a.voice_input:
        return main_voice(a)
    try:
        card = import_face_model(a.onnx, a.out, a.preset, a.name, a.input_name, a.input_size, a.channel_order,
                                 a.mean, a.std, a.crop_margin, a.outputs, a.classes, a.terms)
    except (FileNotFoundError, ValueError, RuntimeError) as err:   # ModelFileError, ImportModelError
        print(f"emo_import_model: {err}", file=sys.stderr)
        return 1
    face = card.face
    print(json.dumps({"card": card.path, "model_id": card.model_id, "expression_labels": face["expression_labels"],
                      "valence_arousal": "the model's" if face.get("valence") else "the circumplex of its classes",
                      "terms": face["terms"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
