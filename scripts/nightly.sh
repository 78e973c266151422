#!/usr/bin/env bash
# The nightly tagging job, for cron.
#
#   scripts/nightly.sh MODEL_DIR [more `hybrid run` flags, e.g. --workers 2]
#
# - one instance at a time: a second start while one runs logs a line and exits 5
#   (flock on HYBRID_LOCK; `hybrid run` also holds a lease in MongoDB, across machines);
# - everything goes to HYBRID_LOG, with a start and an end line;
# - the exit code is `hybrid run`'s (0 ok, 3 failure rate over its limit, 4 bad model,
#   5 another run holds the lease, 6 MongoDB unreachable; see docs/mongo.md).
#
# Environment:
#   HYBRID_ENV_FILE  file of VAR=value lines read first (MONGODB_URI with its password,
#                    HYBRID_CONFIG, ...), so no secret has to sit in the crontab
#   MONGODB_URI      the connection string (or mongo_uri in the config file)
#   HYBRID_BIN       the hybrid executable (default: hybrid on PATH)
#   HYBRID_LOG       log file (default: $HOME/.local/state/hybrid/nightly.log)
#   HYBRID_LOCK      lock file (default: ${XDG_RUNTIME_DIR:-/tmp}/hybrid-nightly.lock)
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 MODEL_DIR [hybrid run flags...]" >&2
    exit 2
fi
model="$1"
shift

if [[ -n "${HYBRID_ENV_FILE:-}" ]]; then
    set -a
    # shellcheck disable=SC1090
    source "$HYBRID_ENV_FILE"
    set +a
fi

bin="${HYBRID_BIN:-hybrid}"
log="${HYBRID_LOG:-$HOME/.local/state/hybrid/nightly.log}"
lock="${HYBRID_LOCK:-${XDG_RUNTIME_DIR:-/tmp}/hybrid-nightly.lock}"
mkdir -p "$(dirname "$log")"

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }

exec 9>"$lock"
if ! flock -n 9; then
    echo "$(stamp) nightly: another nightly.sh still holds $lock; not starting" >>"$log"
    exit 5
fi

echo "$(stamp) nightly: start model=$model args=$*" >>"$log"
set +e
"$bin" --quiet run --model "$model" "$@" >>"$log" 2>&1
code=$?
set -e
echo "$(stamp) nightly: end exit=$code" >>"$log"
exit "$code"
