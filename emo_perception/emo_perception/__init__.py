"""emo_perception: audio-visual valence/arousal recognition for HRI on ROS 2."""
