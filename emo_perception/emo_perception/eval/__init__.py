"""Offline evaluation: rosbag2 files, replay, reports. Nodes never import this package."""
