"""Annotation files: CSV with an optional person column and RECOLA's gold-standard ARFF (AVEC 2016)."""
import numpy as np
import pytest

from emo_perception.recordings.annotations import AnnotationError, read_annotations

ARFF = """@relation GoldStandard

@attribute Instance_name string
@attribute frameTime numeric
@attribute GoldStandard numeric

@data
'train_1',0.000000,{a}
'train_1',0.040000,{b}
'train_1',0.080000,?
'train_1',0.120000,{c}
"""


def test_recola_arff_pairs_merge_into_valence_and_arousal(tmp_path):
    (tmp_path / "train_1_valence.arff").write_text(ARFF.format(a=0.1, b=0.2, c=0.3))
    (tmp_path / "train_1_arousal.arff").write_text(ARFF.format(a=-0.1, b=-0.2, c=-0.3))
    ann = read_annotations(tmp_path / "train_1_valence.arff", tmp_path / "train_1_arousal.arff")
    s = ann.series[""]
    assert np.allclose(s["time"], [0, 0.04, 0.08, 0.12])
    assert np.allclose(s["valence"][[0, 1, 3]], [0.1, 0.2, 0.3]) and np.isnan(s["valence"][2])   # '?' = no rating
    assert np.allclose(s["arousal"][[0, 1, 3]], [-0.1, -0.2, -0.3])
    (tmp_path / "gold.arff").write_text(ARFF.format(a=0, b=0, c=0))
    with pytest.raises(AnnotationError, match="cannot tell valence from arousal"):
        read_annotations(tmp_path / "gold.arff")


def test_csv_with_people_and_its_errors(tmp_path):
    good = tmp_path / "gold.csv"
    good.write_text("time,valence,arousal,person\n0.00,0.1,0.2,f0\n0.04,0.2,0.1,f0\n0.00,-0.5,0.0,f1\n0.04,,0.1,f1\n")
    ann = read_annotations(good)
    assert sorted(ann.series) == ["f0", "f1"] and np.isnan(ann.series["f1"]["valence"][1])
    bad = tmp_path / "bad.csv"
    bad.write_text("time,valence,arousal\n0.0,high,0.1\n")
    with pytest.raises(AnnotationError, match=f"{bad}: line 2: valence is 'high', not a number"):
        read_annotations(bad)
    back = tmp_path / "back.csv"
    back.write_text("time,valence,arousal\n1.0,0,0\n0.5,0,0\n")
    with pytest.raises(AnnotationError, match="do not increase"):
        read_annotations(back)
    scale = tmp_path / "scale.csv"
    scale.write_text("time,valence,arousal\n0.0,5,3\n")
    with pytest.raises(AnnotationError, match=r"outside \[-1, 1\]"):
        read_annotations(scale)
