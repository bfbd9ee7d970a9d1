#!/usr/bin/env bash
# Set everything up on a fresh machine and run the test suite.
# Data for the integration tests is read from $KT_DATA_DIR (default: ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[dev]"
python -m pytest -q "$@"
