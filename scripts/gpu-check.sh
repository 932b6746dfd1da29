#!/usr/bin/env bash
# One prepared check of the GPU path on a machine with an NVIDIA GPU (see DEVELOPERS.md for when
# one is lent): the GPU-marked tests, then bench encode (CPU and CUDA), bench retrieval (100k and
# 1M items, K=4), bench serve with the API on the GPU, a training epoch of both models on the GPU,
# and vLLM on the GPU serving the refine model under bench refine. Every JSON report and a
# summary land in OUT. Budget: under 8 minutes; a missing piece stops it at once, named.
#
#   bash scripts/gpu-check.sh [OUT]            (default OUT: gpu-check)
#
# Environment:
#   INTENTREC_GPU_CHECK_DRY_RUN=1  run every step on the CPU at toy sizes, GPU steps skipped: what
#                                  CI does, so that the script stays correct between GPU loans
#   INTENTREC_WHEELS=DIR           install from these wheels only (a machine without an index);
#                                  otherwise the GPU build of torch and the `gpu` extra come from
#                                  the package index
#   PYTHON                         the python to install into and run (default: .venv's, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-gpu-check}"
dry="${INTENTREC_GPU_CHECK_DRY_RUN:-0}"
mkdir -p "$out"
started=$SECONDS
step() { echo "==> [$((SECONDS - started)) s] $*"; }
fail() { echo "gpu-check: $*" >&2; echo "FAILED: $*" >>"$out/summary.md"; exit 1; }
python="${PYTHON:-}"
[ -n "$python" ] || { [ -x .venv/bin/python ] && python=.venv/bin/python || python=python3; }
intentrec=("$python" -c "from intentrec.cli import main; main()")
echo "# GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$out/summary.md"

if [ "$dry" = 1 ]; then
    device=cpu sizes=20000 epochs=1 duration=1 data=data/ml-100k
    echo "dry run: CPU only, toy sizes, GPU steps skipped" >>"$out/summary.md"
else
    device=cuda sizes=100000,1000000 epochs=2 duration=5 data=data/ml-100k
    command -v nvidia-smi >/dev/null || fail "no nvidia-smi: this script needs an NVIDIA GPU and its driver"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" \
        || fail "nvidia-smi sees no GPU"
    echo "GPU: $(cat "$out/gpu.txt")" >>"$out/summary.md"
    step "installing the GPU build of torch and the gpu, train and dev extras"
    pip=("$python" -m pip install --quiet --disable-pip-version-check)
    [ -n "${INTENTREC_WHEELS:-}" ] && pip+=(--no-index --find-links "$INTENTREC_WHEELS")
    "${pip[@]}" torch -e ".[gpu,train,dev]" >"$out/install.log" 2>&1 \
        || fail "installing torch and the gpu extra failed (see $out/install.log); without a package index set INTENTREC_WHEELS"
    "$python" - <<'EOF' || fail "the GPU stack is incomplete (above)"
import sys
missing = []
import torch
if not torch.cuda.is_available():
    missing.append("torch sees no CUDA GPU (a CPU build of torch?)")
import onnxruntime as ort
if "CUDAExecutionProvider" not in ort.get_available_providers():
    missing.append("onnxruntime has no CUDA provider (onnxruntime-gpu not installed?)")
from models_export.index import gpu_available
if not gpu_available():
    missing.append("faiss sees no GPU (faiss-gpu-cu12 not installed?)")
for line in missing:
    print(f"missing: {line}", file=sys.stderr)
sys.exit(1 if missing else 0)
EOF
fi

step "GPU-marked tests"
"$python" -m pytest -q -m gpu -rs tests >"$out/gpu-tests.log" 2>&1 \
    || fail "GPU tests failed (see $out/gpu-tests.log)"
echo "GPU tests: $(tail -1 "$out/gpu-tests.log")" >>"$out/summary.md"

step "bench encode ($device)"
timeout 120 "${intentrec[@]}" bench encode --device "$device" --repeats 100 --json >"$out/encode.json" \
    || fail "bench encode failed"

step "bench retrieval ($sizes items, K=4)"
timeout 180 "${intentrec[@]}" bench retrieval --sizes "$sizes" --intents 4 --json >"$out/retrieval.json" \
    || fail "bench retrieval failed"

for model in sasrec disen; do
    step "training $model for $epochs epoch(s) on $device"
    timeout 150 "${intentrec[@]}" train --data "$data" --model "$model" --epochs "$epochs" \
        --device "$device" --out "$out/runs/$model" >"$out/train-$model.log" 2>&1 \
        || fail "training $model failed (see $out/train-$model.log)"
    cp "$out/runs/$model/metrics.json" "$out/train-$model.json"
done

step "export and bench serve with the API on $device"
timeout 120 "${intentrec[@]}" export "$out/runs/sasrec" --out "$out/bundles" >"$out/export.log" 2>&1 \
    || fail "export failed (see $out/export.log)"
INTENTREC_DEVICE="$device" timeout 180 "${intentrec[@]}" bench serve --bundle "$out/bundles/current" \
    --duration "$duration" --json >"$out/serve.json" || fail "bench serve failed"

if [ "$dry" = 1 ]; then
    echo "bench refine: skipped (dry run; the CPU LLM is measured by the refine tests)" >>"$out/summary.md"
else
    step "vLLM on the GPU serving the refine model: bench refine"
    timeout 240 "${intentrec[@]}" bench refine --bundle "$out/bundles/current" --json >"$out/refine.json" \
        || fail "bench refine failed (is vLLM's GPU build installed in .venv-llm or INTENTREC_LLM_PYTHON?)"
fi

"$python" - "$out" <<'EOF' >>"$out/summary.md"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() else None
encode = load("encode.json")
for row in encode["results"]:
    gpu = f", CUDA {row['ort_cuda_p50_ms']} ms" if "ort_cuda_p50_ms" in row else ""
    print(f"- encode {row['arch']} batch {row['batch']}: ORT CPU p50 {row['ort_p50_ms']} ms{gpu} ({', '.join(row['ort_providers'])})")
for row in load("retrieval.json")["results"]:
    print(f"- retrieval {row['n_items']} items K={row['intents']} on {row['index_device']}: p99 {row['p99_ms']} ms, recall@100 {row['recall_at_100']}")
for model in ("sasrec", "disen"):
    metrics = load(f"train-{model}.json")
    print(f"- training {model} on {metrics['device']}: {metrics['seconds_per_epoch']} s per epoch")
serve = load("serve.json")
figures = serve["figures"]
print(f"- serve on {serve['device']['name']} ({', '.join(serve['device']['providers'])}): p99 at 200 req/s {figures['p99_ms_at_200rps']} ms, peak {figures['peak_rps']} req/s")
refine = load("refine.json")
if refine:
    print(f"- refine on {refine.get('llm_device')}: cold p99 {refine['cold']['p99_ms']} ms, warm p50 {refine['warm_prefix']['p50_ms']} ms")
EOF
echo "- total: $((SECONDS - started)) s (budget 480 s)" >>"$out/summary.md"
step "done: $out/summary.md"
cat "$out/summary.md"
