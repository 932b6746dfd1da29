#!/usr/bin/env bash
# The main job on a fresh machine: set up, train and evaluate on the shipped MovieLens 100K, export
# a bundle, and serve it (with the embedded LLM when it is installed). Arguments go to
# `intentrec quickstart` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/intentrec quickstart "$@"
