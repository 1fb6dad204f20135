"""A continuous valence/arousal prior from MediaPipe's 52 blendshapes (core/face_landmarks.py).

Each blendshape stands for a facial action unit (AU) of FACS (Ekman & Friesen 1978; Ekman, Friesen &
Hager 2002); the signs follow what the literature reports for those actions, the magnitudes are set
by hand (before any measurement, and not fitted to any data here: a documented prior like the
circumplex points of core/circumplex.py, not a trained model):

valence
- AU12 lip corner puller (mouthSmileLeft/Right) +1.0: zygomaticus major activity rises with positive
  affect (Larsen, Norris & Cacioppo 2003, Psychophysiology 40:776-785; Cacioppo et al. 1986, JPSP 50:260).
- AU6 cheek raiser (cheekSquintLeft/Right) +0.3: the Duchenne marker of felt enjoyment (Ekman,
  Davidson & Friesen 1990, JPSP 58:342-353).
- AU15 lip corner depressor (mouthFrownLeft/Right) -1.0: sadness (EMFACS prototypes; Kohler et al. 2004,
  Psychiatry Research 128:235-244).
- AU4 brow lowerer (browDownLeft/Right) -0.6: corrugator supercilii activity rises with negative
  affect (Larsen et al. 2003); anger, sadness, fear prototypes.
- AU9 nose wrinkler (noseSneerLeft/Right) -0.6 and AU10 upper lip raiser (mouthUpperUpLeft/Right)
  -0.3, the latter only without a smile (it also rises in open smiles: x (1 - AU12)): disgust.
- AU24 lip pressor (mouthPressLeft/Right) -0.3: anger; AU20 lip stretcher (mouthStretchLeft/Right)
  -0.3: fear (Kohler et al. 2004).

arousal
- AU5 upper lid raiser (eyeWideLeft/Right) +0.8 and AU26/27 jaw drop (jawOpen) +0.5: surprise and fear,
  the high-arousal prototypes (Russell 1980 places them at the top of the circumplex). Speech opens the
  jaw too: a talking face reads as more aroused (a known confound of this prior).
- AU1+2 brow raisers (browInnerUp, browOuterUpLeft/Right) +0.4; AU4 brow lowerer +0.3 (anger);
  AU20 lip stretcher +0.3 (fear); AU12 +0.2 (joy is mildly aroused: ALMA's joy point, core/circumplex.py).
- AU43 eye closure (eyeBlinkLeft/Right) -0.6: drowsiness, low arousal (blinks are brief: a per-frame
  dip that smoothing removes).

The sums are squashed by tanh(GAIN * x) into (-1, 1); a neutral face (all near 0) sits at the origin.
"""
from __future__ import annotations

import numpy as np

from .face_landmarks import BLENDSHAPE_INDEX

GAIN = 1.2   # tanh(1.2) = 0.83: a full smile reads as clearly, not maximally, positive

# action (blendshape base name: Left/Right averaged) -> (valence weight, arousal weight)
WEIGHTS = {
    "mouthSmile": (1.0, 0.2),
    "cheekSquint": (0.3, 0.0),
    "mouthFrown": (-1.0, 0.0),
    "browDown": (-0.6, 0.3),
    "noseSneer": (-0.6, 0.0),
    "mouthPress": (-0.3, 0.0),
    "mouthStretch": (-0.3, 0.3),
    "eyeWide": (0.0, 0.8),
    "jawOpen": (0.0, 0.5),
    "browInnerUp": (0.0, 0.4),
    "browOuterUp": (0.0, 0.4),
    "eyeBlink": (0.0, -0.6),
}
UPPER_LIP_VALENCE = -0.3   # mouthUpperUp, gated by (1 - mouthSmile)


def _action(b: np.ndarray, name: str) -> np.ndarray:
    """(N,) activation of one action: the mean of its Left/Right blendshapes, or the single one."""
    if name in BLENDSHAPE_INDEX:
        return b[:, BLENDSHAPE_INDEX[name]]
    return 0.5 * (b[:, BLENDSHAPE_INDEX[name + "Left"]] + b[:, BLENDSHAPE_INDEX[name + "Right"]])


def blendshape_valence_arousal(blendshapes) -> np.ndarray:
    """(52,) or (N, 52) blendshapes (BLENDSHAPE_NAMES order) -> (2,) or (N, 2) valence, arousal in (-1, 1)."""
    b = np.asarray(blendshapes, np.float64)
    single = b.ndim == 1
    b = np.atleast_2d(b)
    if b.shape[-1] != len(BLENDSHAPE_INDEX):
        raise ValueError(f"expected {len(BLENDSHAPE_INDEX)} blendshapes (core/face_landmarks.BLENDSHAPE_NAMES), "
                         f"got shape {np.shape(blendshapes)}")
    v = np.zeros(len(b))
    a = np.zeros(len(b))
    for name, (wv, wa) in WEIGHTS.items():
        x = _action(b, name)
        v += wv * x
        a += wa * x
    v += UPPER_LIP_VALENCE * _action(b, "mouthUpperUp") * (1.0 - _action(b, "mouthSmile"))
    out = np.tanh(GAIN * np.stack([v, a], axis=1)).astype(np.float32)
    return out[0] if single else out
