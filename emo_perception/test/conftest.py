"""Test environment: DDS kept on this machine, one ROS domain per test process."""
import atexit
import os
import pathlib

_PKG_DIR = pathlib.Path(__file__).resolve().parents[1]

# Set before anything imports rclpy. setdefault: a caller's explicit choice wins, but the
# discovery range is forced, because the default would multicast off the machine.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(_PKG_DIR / "config" / "fastdds_profile.xml"))


def _claim_ros_domain():
    """A ROS domain no other pytest process on this machine holds (xdist workers, a second suite run):
    an exclusive lock on one file per domain, held until this process ends."""
    import fcntl
    import tempfile

    folder = pathlib.Path(tempfile.gettempdir()) / "emo_perception_test_ros_domains"
    folder.mkdir(exist_ok=True)
    for k in range(90):
        domain = 10 + (os.getpid() + k) % 90
        lock = open(folder / f"{domain}.lock", "w")     # not inherited by child processes (O_CLOEXEC)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return domain, lock
    raise RuntimeError(f"all ROS domains 10-99 are held by other test processes (locks in {folder})")


# Each pytest process gets its own domain (child processes it starts inherit it on purpose).
_DOMAIN, _DOMAIN_LOCK = _claim_ros_domain()
atexit.register(_DOMAIN_LOCK.close)
os.environ["ROS_DOMAIN_ID"] = str(_DOMAIN)

# rclpy imports lark on the first publisher/subscription; lark imports the deprecated sre_parse and
# sre_constants modules. Import it once here with that warning silenced, so `-W error` still
# turns every other warning into an error.
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import lark  # noqa: E402,F401


# --------------------------------------------------------------------------- hypothesis
# Property tests keep their examples few (max_examples per test) and run without a deadline: a 2-core
# machine shared with other work makes timings noise. In CI the examples are derandomized, so a failure
# reproduces from the log; elsewhere each run explores new ones (failures replay from .hypothesis/).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")


# --------------------------------------------------------------------------- shared fixtures
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """Every model kind exported once (random weights are fine for parity and shapes: never a default)."""
    import torch

    from emo_perception.nets import checkpoint
    from emo_perception.nets.audio_encoder import AudioEncoder
    from emo_perception.nets.face_encoder import FaceEncoder
    from emo_perception.nets.fusion_gru import FusionGRU, FusionGRUConfig
    from emo_perception.inference import export

    out = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    ckpts = tmp_path_factory.mktemp("ckpt")
    cards = {}
    export.teacher_checkpoint(ckpts / "teacher.pt")
    cards["expression_teacher"] = export.export(ckpts / "teacher.pt", out)
    for kind, model in [("face_encoder", FaceEncoder()), ("audio_encoder", AudioEncoder()),
                        ("fusion_gru", FusionGRU(FusionGRUConfig(face_model_id="f@1", audio_model_id="a@2")))]:
        checkpoint.save(ckpts / f"{kind}.pt", model.eval(), kind)
        cards[kind] = export.export(ckpts / f"{kind}.pt", out)
    return cards


@pytest.fixture(scope="session")
def generated_set(tmp_path_factory):
    """emo_train's learnable data set, generated once from real media (training/synthetic.py):
    8 lab sessions (2 held out) and 2 RECOLA-layout sessions (train_1, dev_1), 12 s each."""
    import fcntl

    from emo_perception.training.synthetic import generate

    # made once per run: the xdist workers share their parent temporary folder, and the first to get
    # here generates (~30 s) while the other waits for it instead of making its own
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out, done = shared / "generated_set", shared / "generated_set.done"
    with open(shared / "generated_set.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            generate(out, sessions=8, seconds=12.0, recola_sessions=2, jobs=2)     # the other worker waits anyway
            done.touch()
    return out


# --------------------------------------------------------------------------- two at once (make test: -n 2)
# pytest-xdist runs the suite on both cores (most tests wait on node processes), a module per unit of
# work (`--dist loadfile`: module fixtures are set up once). xdist deals the modules with the most tests
# out first (its default reorder), which mixes CPU-bound modules with ones that wait on node processes:
# measured faster here (449 s) than dealing out the training module first and the pure modules beside it
# (`--no-loadscope-reorder` with an explicit order: 482 and 489 s). The order below only breaks ties.
# The generated set is made once per run for both workers (generated_set above). (Not `--dist
# loadgroup`: its groups do not take effect under pytest 9, whose node ids no longer come from the
# attribute xdist 3.8 rewrites.)
def pytest_collection_modifyitems(config, items):
    heavy = {item.module.__name__ for item in items
             if item.get_closest_marker("ros") or item.get_closest_marker("media")}
    items.sort(key=lambda item: 1 if item.module.__name__ in heavy else 0)    # stable: order kept


# --------------------------------------------------------------------------- lanes (pytest.ini)
# A test's markers say what it really does, and these guards hold every test to them: one that
# starts rclpy or a node process without `ros`, or encodes video without `media`, fails with the fix.
# So `make test-fast` (-m "not ros and not media") stays free of both, and a new test lands in the
# right lane the first time it runs, in either lane.
_current_item = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _current_item
    _current_item = item       # set up (session fixtures included), run, torn down
    try:
        return (yield)
    finally:
        _current_item = None


def _require(marker: str, what: str):
    item = _current_item
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(f"{item.nodeid} {what} but is not marked '{marker}': add @pytest.mark.{marker} to the test or "
                    f"`pytestmark = pytest.mark.{marker}` to its module (pytest.ini says which tests get it)",
                    pytrace=False)


def _guarded(fn, marker: str, what: str):
    def guarded(*args, **kwargs):
        _require(marker, what)
        return fn(*args, **kwargs)
    guarded.__wrapped__ = fn
    return guarded


def _guard_av_open(fn):
    def av_open(file, *args, **kwargs):
        mode = args[0] if args else kwargs.get("mode") or getattr(file, "mode", "")
        if str(mode).startswith("w"):
            _require("media", "encodes media with PyAV")
        return fn(file, *args, **kwargs)
    av_open.__wrapped__ = fn
    return av_open


import av  # noqa: E402
import node_harness  # noqa: E402
import rclpy  # noqa: E402
import ros_process  # noqa: E402

rclpy.init = _guarded(rclpy.init, "ros", "starts rclpy")
node_harness.NodeProcess.__init__ = _guarded(node_harness.NodeProcess.__init__, "ros", "starts a node process")
ros_process.start = _guarded(ros_process.start, "ros", "starts a ROS helper process")
av.open = _guard_av_open(av.open)
