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
#   HYBRID_ENV_FILE  file of KEY=value lines read first (MONGODB_URI with its password,
#                    HYBRID_CONFIG, ...), so no secret has to sit in the crontab. It is read
#                    as data, never run, as systemd's EnvironmentFile and docker's --env-file
#                    are: one KEY=value a line (an `export ` before it is allowed), the value
#                    taken literally (`&`, `$`, `;` included) with one pair of quotes around
#                    it removed, blank lines and lines starting with # skipped.
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

# Export the KEY=value lines of $1; a line that is none names the file and line (never its
# text, which may hold a password) and exits 2.
read_env_file() {
    local file="$1" line n=0 key value
    if [[ ! -f "$file" || ! -r "$file" ]]; then
        echo "nightly: cannot read HYBRID_ENV_FILE $file" >&2
        exit 2
    fi
    while IFS= read -r line || [[ -n "$line" ]]; do
        n=$((n + 1))
        line="${line%$'\r'}"
        [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
        if [[ ! "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=[[:space:]]*(.*[^[:space:]])?[[:space:]]*$ ]]; then
            echo "nightly: $file:$n: not a KEY=value line" >&2
            exit 2
        fi
        key="${BASH_REMATCH[2]}"
        value="${BASH_REMATCH[3]}"
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
            value="${BASH_REMATCH[1]}"
        fi
        export "$key=$value"
    done <"$file"
}

if [[ -n "${HYBRID_ENV_FILE:-}" ]]; then
    read_env_file "$HYBRID_ENV_FILE"
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
