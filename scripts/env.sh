# Runtime environment for everything started from this repository's own commands and tests.
# Source it: `. scripts/env.sh`. Safe to source twice.
_EMO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
[ -f "$_EMO_ROOT/.venv/bin/activate" ] && . "$_EMO_ROOT/.venv/bin/activate"
# Keep DDS discovery on this machine: the default multicasts to the whole network.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="$_EMO_ROOT/emo_perception/config/fastdds_profile.xml"
# The venv is the install prefix of the interface packages (for ament_index lookups).
[ -n "${VIRTUAL_ENV:-}" ] && export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# One documented default for people (42: away from the default 0 that other ROS users on the
# machine share), so nodes started in one shell and a listener in another see each other. The
# tests pick a domain per process (test/conftest.py).
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-42}
