# Sourced first by the scripts that run something and report on it (api-check, soak, versus,
# kill-test, scale-test, scale-throughput): the repository root as the working directory,
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
