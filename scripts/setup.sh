#!/usr/bin/env bash
# Install rlcanon with the CPU build of torch. Usage: scripts/setup.sh [EXTRAS]
#   scripts/setup.sh                    the core package
#   scripts/setup.sh dev,ray,atari      what CI installs
#   scripts/setup.sh bench              stable-baselines3 and pycma for benchmarks/
# torch is pinned to 2.13.0 first: that CPU wheel is what pip resolves here, and once it is
# installed the package's torch range is satisfied and no CUDA build is pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q "torch==2.13.0"
if [ -n "${1:-}" ]; then
    python3 -m pip install -q -e ".[$1]"
else
    python3 -m pip install -q -e .
fi
# pyenv installs console scripts behind shims that only appear after a rehash
if command -v pyenv > /dev/null 2>&1; then pyenv rehash || true; fi
python3 -c "import torch, rlcanon; print('rlcanon', rlcanon.__version__, 'torch', torch.__version__)"
