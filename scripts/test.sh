#!/usr/bin/env bash
# Set everything up on a fresh machine and run the test suite.
# Data for the integration tests is read from $KT_DATA_DIR (default: ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
# The TFLite Task Library's client (tests/test_mediapipe.py) needs libusb from Debian.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! ldconfig -p | grep -q libusb-1.0; then
    (apt-get update -qq && apt-get install -y -qq libusb-1.0-0 >/dev/null) \
        || echo "test.sh: libusb-1.0-0 not installed; the Task Library test will say so and skip"
fi
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[dev]"
python -m pytest -q "$@"
# The backend-agnostic core (losses, taps, Distiller) once more on JAX; tests of
# TensorFlow-only paths are marked `tensorflow_only` and skip there, saying why.
if [ $# -eq 0 ]; then
    echo "== the same core on KERAS_BACKEND=jax"
    KERAS_BACKEND=jax python -m pytest -q -rs -m "not slow" tests/test_losses.py \
        tests/test_distillation_loss.py tests/test_layer_map.py tests/test_taps.py \
        tests/test_taps_kernels.py tests/test_distiller.py tests/test_commands_evaluate.py
fi
