"""Recordings without ROS: video and audio files decoded with PyAV, WAV I/O, annotation files, the real
media that installed packages ship, and the time origin the bags and features share. Training and
evaluation both use this room; neither imports the other."""
