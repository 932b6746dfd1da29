#!/usr/bin/env bash
# Sets up a fresh machine: .venv with intentrec and every extra this machine can use, and the
# embedded LLM server's own environment (.venv-llm). Safe to run again: it only fills what is missing.
#
# Environment: PYTHON (default python3), INTENTREC_BACKEND=cpu|gpu (default cpu),
# INTENTREC_SKIP_LLM=1 to leave the embedded LLM out.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
backend="${INTENTREC_BACKEND:-cpu}"
step() { echo "==> $*"; }
[ -x .venv/bin/python ] || { step "creating the virtual environment .venv"; "$python" -m venv .venv; }
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip
# torch first and pinned: a bare `torch` requirement on a machine without it pulls a multi-GB CUDA
# build. Outside this machine the CPU build comes from the PyTorch CPU wheel index
# (pip install torch==2.13.0 --index-url <PyTorch CPU index>).
step "installing PyTorch 2.13.0 (CPU build) into .venv: a few minutes on a new machine"
"${pip[@]}" install --quiet "torch==2.13.0"
step "installing intentrec with the train, tune, text, ranker, ${backend}, loadtest and dev extras: a few minutes"
"${pip[@]}" install --quiet -e ".[train,tune,text,ranker,${backend},loadtest,dev]"
step "intentrec installed in .venv ($backend back-end)"

if [ "${INTENTREC_SKIP_LLM:-0}" != 1 ]; then
    bash scripts/install-llm.sh
fi
