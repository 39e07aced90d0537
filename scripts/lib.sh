# Sourced first by the scripts that run something and report on it (api-check, soak, versus,
# kill-test, scale-test, scale-throughput, cost): the repository root as the working directory,
# messages prefixed by the script's name, and `run_dir NAME` for the script's logs, so each
# script keeps only its own settings.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRIPT="$(basename "${BASH_SOURCE[1]}" .sh)"

say() { echo "$SCRIPT: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# RUN_DIR=.run/NAME, created, with the previous run's logs gone.
run_dir() {
    RUN_DIR="$ROOT/.run/$1"
    mkdir -p "$RUN_DIR"
    rm -f "$RUN_DIR"/*.log
}

# layers PERF_DATA TOP [PER_TX]: a `perf record` file's self time by layer of the chain
# (scripts/layers.awk), TOP symbols per layer; with PER_TX (the run's µs CPU per transaction)
# also each layer's µs per transaction.
layers() {
    perf report -i "$1" --no-children --sort dso,sym --stdio 2>/dev/null |
        awk '/^ +[0-9.]+%/ { pct = $1; sub(/%/, "", pct); dso = $2; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); print pct "\t" dso "\t" $0 }' |
        gawk -F'\t' -v top="$2" -v per_tx="${3:-}" -f "$ROOT/scripts/layers.awk"
}
