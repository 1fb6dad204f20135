from glob import glob

from setuptools import find_packages, setup

PACKAGE = "emo_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["web/*.html"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/models", glob("models/*.onnx") + glob("models/*.json") + glob("models/*.pt")
         + glob("models/NOTICE.*")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="emo_perception maintainers",
    maintainer_email="emo-perception@example.org",
    description="Audio-visual valence/arousal recognition for HRI on ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "face_embedding_node = emo_perception.nodes.face_embedding_node:main",
            "audio_embedding_node = emo_perception.nodes.audio_embedding_node:main",
            "fusion_node = emo_perception.nodes.fusion_node:main",
            "emo_perception_all = emo_perception.nodes.all_in_one:main",
            "emo_export = emo_perception.cli.export:main",
            "emo_import_model = emo_perception.cli.import_model:main",
            "emo_train = emo_perception.cli.train:main",
            "emo_convert_blazeface = emo_perception.cli.convert_blazeface:main",
            "emo_convert_face_landmarker = emo_perception.cli.convert_face_landmarker:main",
            "emo_demo = emo_perception.cli.demo:main",
            "emo_engine = emo_perception.cli.engine:main",
            "emo_bag = emo_perception.cli.bag:main",
            "emo_eval = emo_perception.cli.evaluate:main",
            "emo_record = emo_perception.nodes.session_logger_node:main",
            "emo_live_view = emo_perception.nodes.live_view_node:main",
            "emo_mark_event = emo_perception.cli.mark_event:main",
            "emo_watch = emo_perception.cli.watch:main",
        ],
    },
)
