#!/usr/bin/env bash
# Set everything up on a fresh machine and run the main job.
# Data: $KT_DATA_DIR (default ../shared/data, GLUE's SST-2 layout under sst2/).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[dev]"
export KT_DATA_DIR="${KT_DATA_DIR:-$(cd .. && pwd)/shared/data}"
python examples/quickstart.py
