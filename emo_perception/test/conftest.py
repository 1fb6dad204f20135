"""Test environment: DDS kept on this machine, one ROS domain per test process."""
import os
import pathlib

_PKG_DIR = pathlib.Path(__file__).resolve().parents[1]

# Set before anything imports rclpy. setdefault: a caller's explicit choice wins, but the
# discovery range is forced, because the default would multicast off the machine.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(_PKG_DIR / "config" / "fastdds_profile.xml"))
# Each pytest process gets its own domain (child processes it starts inherit it on purpose).
os.environ["ROS_DOMAIN_ID"] = str(os.getpid() % 90 + 10)

# rclpy imports lark on the first publisher/subscription; lark imports the deprecated sre_parse and
# sre_constants modules. Import it once here with that warning silenced, so `-W error` still
# turns every other warning into an error.
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import lark  # noqa: E402,F401


# --------------------------------------------------------------------------- shared fixtures
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """Every model kind exported once (random weights are fine for parity and shapes: never a default)."""
    import torch

    from emo_perception.nets import checkpoint
    from emo_perception.nets.audio_encoder import AudioEncoder
    from emo_perception.nets.face_encoder import FaceEncoder
    from emo_perception.nets.fusion_gru import FusionConfig, FusionGRU
    from emo_perception.inference import export

    out = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    ckpts = tmp_path_factory.mktemp("ckpt")
    cards = {}
    export.teacher_checkpoint(ckpts / "teacher.pt")
    cards["expression_teacher"] = export.export(ckpts / "teacher.pt", out)
    for kind, model in [("face_encoder", FaceEncoder()), ("audio_encoder", AudioEncoder()),
                        ("fusion_gru", FusionGRU(FusionConfig(face_model_id="f@1", audio_model_id="a@2")))]:
        checkpoint.save(ckpts / f"{kind}.pt", model.eval(), kind)
        cards[kind] = export.export(ckpts / f"{kind}.pt", out)
    return cards


@pytest.fixture(scope="session")
def generated_set(tmp_path_factory):
    """emo_train's learnable data set, generated once from real media (training/synthetic.py):
    8 lab sessions (2 held out) and 2 RECOLA-layout sessions (train_1, dev_1), 12 s each."""
    from emo_perception.training.synthetic import generate

    out = tmp_path_factory.mktemp("generated")
    generate(out, sessions=8, seconds=12.0, recola_sessions=2)
    return out
