#!/usr/bin/env bash
# The prepared check for a lent CUDA machine, under 5 minutes on one GPU. From the repository root, after
# `pip install -e ".[test,bench]"`:
#
#   bash scripts/gpu_check.sh [out-dir]          # default benchmarks/cuda
#
# 1. the operator against the gather-based baseline and dense attention at the three YOLO shapes with B=16, forward
#    and forward+backward, in bf16 and fp32 (scripts/benchmark_bra.py: tables, CSV and sweep plot per dtype);
# 2. a training step (forward, loss, backward, SGD) of yolo11n and yolo11n-biformer at 640, batch 16, fp32 and bf16
#    autocast, interleaved (scripts/benchmark_train_step.py);
# 3. the tests that need CUDA (they skip on a CPU machine).
# Everything printed also goes to <out-dir>/gpu_check.log; commit that folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/cuda}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
for dtype in bfloat16 float32; do
  python scripts/benchmark_bra.py --device cuda --dtype "$dtype" --batch 16 --budget 2 --sweep-sizes 40 80 160 \
    --out-dir "$out/bra-$dtype"
done
python scripts/benchmark_train_step.py --device cuda --imgsz 640 --batch 16 --rounds 10
python scripts/benchmark_train_step.py --device cuda --imgsz 640 --batch 16 --rounds 10 --amp
python -m pytest -q -p no:cacheprovider tests/test_modules.py::test_amp_training_step_is_finite_on_cuda \
  tests/test_e2e_distributed.py::test_sync_batchnorm_ddp_training_on_cuda -rs
