"""Where the package's installed files (config, models, launch) are."""
from __future__ import annotations

import pathlib

PACKAGE = "emo_perception"


def share_dir() -> pathlib.Path:
    """The package share dir from the ament index (colcon install), else the source tree (editable
    pip install on the dev machines), which has the same config/, models/ and launch/ layout."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            return pathlib.Path(get_package_share_directory(PACKAGE))
        except (PackageNotFoundError, EnvironmentError, ValueError):
            pass
    except ImportError:
        pass
    return pathlib.Path(__file__).resolve().parents[1]


def resolve_model(path: str, default_name: str) -> pathlib.Path:
    """A model card path from a parameter: '' -> the shipped default; relative -> under share/models."""
    if not path:
        return share_dir() / "models" / f"{default_name}.json"
    p = pathlib.Path(path).expanduser()
    return p if p.is_absolute() else share_dir() / "models" / p


def default_params_file() -> pathlib.Path:
    return share_dir() / "config" / "emo_perception.yaml"
