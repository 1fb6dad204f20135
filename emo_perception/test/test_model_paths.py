"""Model paths relative to where the user stands: the current folder first (where `emo_train` just
wrote its export), then the package's models/; a path in neither names every place looked in."""
import pytest

from emo_perception.paths import resolve_model, share_dir


def test_relative_model_paths_are_found_in_the_current_folder_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    card = tmp_path / "runs" / "face" / "export" / "face_encoder.json"
    card.parent.mkdir(parents=True)
    card.write_text("{}")
    assert resolve_model("runs/face/export/face_encoder.json", "expression_teacher") == card.resolve()
    # a shipped card by its file name still resolves in the package's models/
    shipped = (share_dir() / "models" / "expression_teacher.json").resolve()
    assert resolve_model("expression_teacher.json", "x") == shipped
    (tmp_path / "expression_teacher.json").write_text("{}")         # ... unless the current folder has one
    assert resolve_model("expression_teacher.json", "x") == (tmp_path / "expression_teacher.json").resolve()
    assert resolve_model("", "expression_teacher") == share_dir() / "models" / "expression_teacher.json"


def test_a_relative_path_found_nowhere_lists_the_places_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        resolve_model("runs/face/export/face_encoder.json", "expression_teacher")
    text = str(err.value)
    assert str(tmp_path / "runs/face/export/face_encoder.json") in text
    assert str(share_dir() / "models" / "runs/face/export/face_encoder.json") in text


def test_the_face_node_config_takes_a_card_relative_to_the_current_folder(tmp_path, monkeypatch, bundles):
    import dataclasses
    import shutil

    from emo_perception.runtime import load_configs
    from emo_perception.runtime.build import face_request
    monkeypatch.chdir(tmp_path)
    src = bundles["face_encoder"].path
    for f in (src, src.replace(".json", ".onnx")):
        shutil.copy(f, tmp_path)
    cfg = dataclasses.replace(load_configs()["face_embedding_node"], face_model="face_encoder.json")
    assert face_request(cfg).card_path == (tmp_path / "face_encoder.json").resolve()
