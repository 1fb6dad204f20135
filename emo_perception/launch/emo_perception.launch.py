"""Launch the three emo_perception nodes as separate processes.

    ros2 launch emo_perception emo_perception.launch.py image:=/camera/color/image_raw \
        audio_stamped:=/audio/audio_stamped audio_info:=/audio/audio_info backend:=tensorrt

`backend` and `use_sim_time` override the params file only when given on the launch line, so a
params file's own `backend:` takes effect otherwise.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

NODES = ("face_embedding_node", "audio_embedding_node", "fusion_node")
OVERRIDABLE = ("backend", "use_sim_time")   # launch arguments that become parameters when set


def _nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    overrides = {name: arg(name) for name in OVERRIDABLE if arg(name) != ""}
    if "use_sim_time" in overrides:
        overrides["use_sim_time"] = overrides["use_sim_time"].lower() in ("true", "1", "yes")
    parameters = [arg("params_file")] + ([overrides] if overrides else [])
    remappings = {
        "face_embedding_node": [("image", arg("image")), ("image/compressed", arg("image") + "/compressed")],
        "audio_embedding_node": [("audio_stamped", arg("audio_stamped")), ("audio_info", arg("audio_info"))],
        "fusion_node": [],
    }
    return [Node(package="emo_perception", executable=name, name=name, namespace=arg("namespace"),
                 parameters=parameters, remappings=remappings[name], output="screen") for name in NODES]


def generate_launch_description():
    share = get_package_share_directory("emo_perception")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "emo_perception.yaml"),
                              description="YAML with a ros__parameters block per node"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all three nodes"),
        DeclareLaunchArgument("backend", default_value="",
                              description="onnxruntime | torch | tensorrt; empty: the params file decides"),
        DeclareLaunchArgument("use_sim_time", default_value="",
                              description="true when replaying bags with /clock; empty: the params file decides"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw", description="camera image topic"),
        DeclareLaunchArgument("audio_stamped", default_value="/audio/audio_stamped",
                              description="AudioDataStamped topic (audio_capture)"),
        DeclareLaunchArgument("audio_info", default_value="/audio/audio_info", description="AudioInfo topic"),
        OpaqueFunction(function=_nodes),
    ])
