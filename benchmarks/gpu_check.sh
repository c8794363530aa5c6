#!/usr/bin/env bash
# The whole GPU check in one go (≤ 10 minutes on one H100-class GPU): run it where a GPU is lent.
#   1. eyegen check paper at the full paper batches: every model, 2 iterations, s/iteration, memory, FLOPs;
#   2. Seg2Eye at the two reference configs, both normalisations, fp32 and bf16;
#   3. the tests marked gpu (the 00 notebook under paper, LPIPS on GPU = on CPU);
#   4. notebooks 00 and 05 under the gpu profile, timed (the others take ~10 minutes each).
# Figures go to stdout and to ${OUT:-gpu-check}/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
export EYEGEN_WEIGHTS_DIR="${EYEGEN_WEIGHTS_DIR:-$(cd .. && pwd)/shared/weights}"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"
time timeout 240 $PY -m eyegen_lib.cli check paper 2>&1 | tee "$OUT/check_paper.md"
time timeout 150 $PY benchmarks/bench_seg2eye.py --repeats 5 2>&1 | tee "$OUT/bench_seg2eye.txt"
time timeout 90 $PY -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tail -3 | tee "$OUT/pytest_gpu.txt"
time timeout 120 $PY -m eyegen_lib.cli run --profile gpu --only 00 05 --out "$OUT/run" 2>&1 | tail -4 | tee "$OUT/run.txt"
