"""emo_perception: audio-visual valence/arousal recognition for HRI on ROS 2."""
import os

# The nodes make many small numpy calls per second; a multi-threaded BLAS busy-waits between
# them (measured: the audio node at ~80 % of a core for 2 % of real work). One BLAS thread,
# unless the user chose otherwise. Effective when emo_perception is imported before numpy,
# which is the case for every console script and node module.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
