# Sourced first by the scripts that run something and report on it (api-check, otlp-check, dlq-check, soak, versus,
# kill-test, scale-test, scale-throughput, cost, console-test): the repository root as the working directory,
# messages prefixed by the script's name, and `run_dir NAME` for the script's logs, so each
# script keeps only its own settings.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRIPT="$(basename "${BASH_SOURCE[1]}" .sh)"

say() { echo "$SCRIPT: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# The all-in-one binary, built unless SKIP_BUILD=1 or SWITCHBOARD_BIN names one: prints its path.
switchboard_bin() {
    local bin="${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/switchboard}"
    if [[ "${SKIP_BUILD:-0}" != 1 && -z "${SWITCHBOARD_BIN:-}" ]]; then
        cargo build -q -p switchboard --bin switchboard >&2 || die "cargo build of switchboard failed"
    fi
    [[ -x "$bin" ]] || die "no binary at $bin"
    echo "$bin"
}

# A free loopback port (the kernel's pick), for a service started by the script.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for_http URL PID SECONDS LOG: until URL answers 2xx; fails loudly as soon as PID exits,
# or when SECONDS pass.
wait_for_http() {
    local url="$1" pid="$2" secs="$3" log="$4" i
    for ((i = 0; i < secs * 10; i++)); do
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" 2>/dev/null &&
            return 0
        kill -0 "$pid" 2>/dev/null || die "the process serving $url exited at start; see $log"
        sleep 0.1
    done
    die "$url did not answer within $secs s; see $log"
}

# stop_pids PID...: SIGTERM to each PID still running, then wait for them all; a pid already
# gone, or not a child of this shell, is skipped quietly (cleanup runs on every exit path).
stop_pids() {
    local p
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# venv_install VENV PACKAGE...: pip-installs PACKAGE... into the venv VENV, created first when it
# has no pip. Debian splits venv/ensurepip out of python3: as root with apt-get, python3-venv is
# installed and the venv made again.
venv_install() {
    local venv="$1"
    shift
    say "installing $* into $venv"
    if [[ ! -x "$venv/bin/pip" ]] && ! python3 -m venv "$venv"; then
        [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || die "python3 -m venv failed (install python3-venv)"
        rm -rf "$venv"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
}

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

# threads_of PID: "tid name ticks switches" for each thread of PID (digits dropped from names,
# so grpcio's completion-queue threads add up as one "grpc-poll-"), sorted by tid.
threads_of() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s %s\n' "${t##*/}" "$(tr -d '0-9 ' <"$t/comm")" \
            "$(sed 's/^.*) //' "$t/stat" | awk '{print $12 + $13}')" \
            "$(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")"
    done 2>/dev/null | sort
}

# thread_costs BEFORE AFTER N: from two threads_of snapshots and N transactions, CPU µs and
# context switches per transaction by thread name. A thread started in between counts from
# zero; one that ended is missing.
thread_costs() {
    join -a 2 -e 0 -o 2.2,1.3,2.3,1.4,2.4 "$1" "$2" |
        gawk -v n="$3" -v hz="$(getconf CLK_TCK)" '{ cpu[$1] += $3 - $2; sw[$1] += $5 - $4 }
            END { PROCINFO["sorted_in"] = "@val_num_desc"
                  for (t in cpu) if (cpu[t] + sw[t] > 0)
                      printf "thread %-18s %7.1f µs CPU/tx %6.2f switches/tx\n", t, cpu[t] * 1e6 / hz / n, sw[t] / n }'
}
