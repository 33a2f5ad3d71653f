#!/usr/bin/env bash
# Every GPU check of issue 12 in one go, on a device machine (see bench/RESULTS.md):
#   run with carry [".whl"], e.g.  bash bench/gpu.sh   (writes $OUT/gpu.log when $OUT is set)
# The GPU image lacks sktime, scikit-base and pydantic (NOTES.md); the machine reaches no index,
# so their cp312 wheels travel in .whl/ (ignored by git), fetched here with:
#   .venv/bin/pip download --only-binary=:all: --no-deps --python-version 3.12 \
#     --platform manylinux2014_x86_64 -d .whl sktime==1.2.0 scikit-base==1.1.1 pydantic==2.14.4 \
#     pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0
# Each step has its own time limit so a slow one still leaves the others' figures.
set -u
LOG=${OUT:-/tmp}/gpu.log
SITE=/tmp/moola-site
python3 -m pip install -q --no-deps --no-index --target "$SITE" .whl/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "== GPU vs CPU probabilities, full fp32 and TF32 (bench/cross_device.py: the serving tolerance)"
  timeout 60 python3 bench/cross_device.py
  echo "== timings (bench/gpu.py)"
  timeout 150 python3 bench/gpu.py
  echo "== gates on the sample data, GPU budget (bench/gates.py --device cuda)"
  timeout 120 python3 bench/gates.py --device cuda
  echo "== recipe, GPU budget (bench/recipe.py --device cuda)"
  timeout 240 python3 bench/recipe.py --device cuda --datasets GunPoint sample --gates baseline minirocket
} 2>&1 | grep -v Warning | tee "$LOG"
