"""eGeMAPS (Eyben et al. 2016; AVEC 2016's audio baseline features) as an audio embedding:
openSMILE's 88 eGeMAPSv02 functionals over each window, computed by the `opensmile` wheel's own
extractor (audEERING research licence: non-commercial use only, so it is never installed by
default on a robot; `audio_model: egemaps` needs `pip install opensmile`).

The functionals span several orders of magnitude (F0 in semitones ~30, jitter ~0.01, spectral
slopes ~ -20), so each is compressed as sign(x) log(1 + |x|): a fixed, data-independent scaling the
fusion GRU's linear projection can work with, the same at training and at run time.
"""
from __future__ import annotations

import numpy as np

from .audio_frontend import SAMPLE_RATE

DIM = 88


class EgemapsEncoder:
    input = "samples"      # AudioPipeline gives this encoder the window's samples, not its log-mel

    def __init__(self):
        try:
            import opensmile
        except ImportError as err:
            raise ImportError("audio_model 'egemaps' needs the opensmile wheel (pip install opensmile; research "
                              "licence, non-commercial use only)", name="opensmile") from err
        self.smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self.model_id = f"egemaps_v02@opensmile-{opensmile.__version__}"
        self.dim = DIM

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        # opensmile converts the signal to 16-bit integers: a float stream louder than full scale would wrap
        x = self.smile.process_signal(np.clip(samples, -1.0, 1.0).astype(np.float32), SAMPLE_RATE).to_numpy()[0]
        x = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        return (np.sign(x) * np.log1p(np.abs(x))).astype(np.float32)
