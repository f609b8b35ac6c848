#!/usr/bin/env bash
# Install rlcanon with the CPU build of torch. Usage: scripts/setup.sh [EXTRAS]
#   scripts/setup.sh          core + atari
#   scripts/setup.sh dev      + pytest, ruff, hypothesis
#   scripts/setup.sh dev,bench
# torch is pinned to 2.13.0 first: that CPU wheel is what pip resolves here, and once it is
# installed the package's torch range is satisfied and no CUDA build is pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
extras="atari${1:+,$1}"
python3 -m pip install -q "torch==2.13.0"
python3 -m pip install -q -e ".[${extras}]"
python3 -c "import torch, rlcanon; print('rlcanon', rlcanon.__version__, 'torch', torch.__version__)"
