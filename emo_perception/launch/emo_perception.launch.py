"""Launch the three emo_perception nodes as separate processes.

    ros2 launch emo_perception emo_perception.launch.py image:=/camera/color/image_raw \
        audio_stamped:=/audio/audio_stamped audio_info:=/audio/audio_info backend:=tensorrt
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("emo_perception")
    params_file = LaunchConfiguration("params_file")
    backend = LaunchConfiguration("backend")
    use_sim_time = LaunchConfiguration("use_sim_time")
    namespace = LaunchConfiguration("namespace")
    overrides = {"backend": backend, "use_sim_time": use_sim_time}

    def node(executable, remappings):
        return Node(package="emo_perception", executable=executable, name=executable, namespace=namespace,
                    parameters=[params_file, overrides], remappings=remappings, output="screen")

    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "emo_perception.yaml"),
                              description="YAML with a ros__parameters block per node"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all three nodes"),
        DeclareLaunchArgument("backend", default_value="onnxruntime",
                              description="inference backend: onnxruntime | torch | tensorrt"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="true when replaying bags"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw", description="camera image topic"),
        DeclareLaunchArgument("audio_stamped", default_value="/audio/audio_stamped",
                              description="AudioDataStamped topic (audio_capture)"),
        DeclareLaunchArgument("audio_info", default_value="/audio/audio_info", description="AudioInfo topic"),
        node("face_embedding_node", [("image", LaunchConfiguration("image")),
                                     ("image/compressed", [LaunchConfiguration("image"), "/compressed"])]),
        node("audio_embedding_node", [("audio_stamped", LaunchConfiguration("audio_stamped")),
                                      ("audio_info", LaunchConfiguration("audio_info"))]),
        node("fusion_node", []),
    ])
