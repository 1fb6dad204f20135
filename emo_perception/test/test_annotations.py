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


def test_csv_column_names_in_any_case_and_semicolon_or_tab_separators(tmp_path):
    expect = {"time": [0.0, 0.04], "valence": [0.5, -0.25], "arousal": [0.1, 0.2]}
    files = {
        "case.csv": "Time,Valence,AROUSAL\n0.00,0.5,0.1\n0.04,-0.25,0.2\n",
        "semicolon.csv": "time;valence;arousal\n0,00;0,5;0,1\n0,04;-0,25;0,2\n",      # a spreadsheet's decimal comma
        "tab.tsv": "Arousal\tTime\tValence\n0.1\t0.00\t0.5\n0.2\t0.04\t-0.25\n\n",      # any order; a blank last line
        "bom.csv": "\ufefftime,valence,arousal\n0.00,0.5,0.1\n0.04,-0.25,0.2\n",         # Excel's UTF-8 byte order mark
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        s = read_annotations(tmp_path / name).series[""]
        for col, values in expect.items():
            assert np.allclose(s[col], values), (name, col, s[col])
    people = tmp_path / "people.csv"
    people.write_text("TIME;VALENCE;AROUSAL;Person\n0.0;0.1;0.2;f0\n0.0;0.3;0.1;f1\n")
    assert sorted(read_annotations(people).series) == ["f0", "f1"]
    twice = tmp_path / "twice.csv"
    twice.write_text("time,Time,valence,arousal\n0,0,0,0\n")
    with pytest.raises(AnnotationError, match=f"{twice}: column 'Time' appears twice"):
        read_annotations(twice)


def test_the_time_base_check_refuses_milliseconds_and_other_clocks_before_a_bag_is_written():
    import numpy as np

    from emo_perception.recordings.annotations import AnnotationError, Annotations, check_time_base
    t = np.arange(0, 8.0, 0.04)
    seconds = Annotations("a.csv", {"": {"time": t, "valence": 0 * t, "arousal": 0 * t}})
    check_time_base(seconds, 8.0)
    for times, text in ((t * 1000, "look like milliseconds"), (t + 1.7e9, "a different time base")):
        bad = Annotations("a.csv", {"": {"time": times, "valence": 0 * t, "arousal": 0 * t}})
        with pytest.raises(AnnotationError, match=text):
            check_time_base(bad, 8.0)
