"""Where the package's installed files (config, models, launch) are, and writing files atomically."""
from __future__ import annotations

import contextlib
import os
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
    """A model card path from a parameter or setting: '' -> the shipped default; absolute -> as given;
    relative -> the current folder first (where `emo_train` just wrote it), then the package's models/.
    FileNotFoundError naming every place looked in when a relative path is in neither."""
    models = share_dir() / "models"
    if not path:
        return models / f"{default_name}.json"
    p = pathlib.Path(path).expanduser()
    if p.is_absolute():
        return p
    tried = [pathlib.Path.cwd() / p, models / p]
    for candidate in tried:
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"model card '{path}' not found; looked in: {', '.join(str(c) for c in tried)} "
                            "(give an absolute path, or a path relative to the current folder)")


def default_params_file() -> pathlib.Path:
    return share_dir() / "config" / "emo_perception.yaml"


@contextlib.contextmanager
def atomic_open(path):
    """A binary file object that becomes `path` when the block ends without an error: it is written
    as a temporary file in the same folder and renamed over `path`, so readers (or a kill while
    writing) never see half a file; on an error the temporary file is removed and `path` kept.
    For writers that want a file object (torch.save, np.savez); bytes: atomic_write."""
    path = pathlib.Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path, data: bytes):
    """Write `data` to `path` atomically (see atomic_open)."""
    with atomic_open(path) as f:
        f.write(data)
