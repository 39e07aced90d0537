#!/usr/bin/env bash
# An interleaved A/B of scripts/cost.sh: CPU per transaction of two or more variants, each round
# running every variant once, in an order that turns each round (A B, then B A, …) so a drift of
# the host within a round, or a cost the run before leaves behind, weighs on every variant alike.
# On a shared VM one run's figure swings ±20 %; a variant's cost is read from the paired ratios
# (each round's run over the same round's run of the first variant), not from two lone runs.
#
#   scripts/cost-ab.sh ROUNDS LABEL=[VAR=VALUE …] LABEL=[VAR=VALUE …] …
#
#   off=OTEL_SDK_DISABLED=true         # trace export off (else the all-in-one exports every
#                                      # trace to its own console)
#   scripts/cost-ab.sh 10 $off sink=COST_COLLECTOR=sink
#   scripts/cost-ab.sh 10 $off dead="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9"
#   scripts/cost-ab.sh 10 $off again=OTEL_SDK_DISABLED=true   # A/A: what the instrument gives
#                                                              # for no change at all
#   COST_AB_BIN=/tmp/main scripts/cost-ab.sh 10 $off main=COST_COLLECTOR=sink \
#       change="COST_COLLECTOR=sink COST_AB_BIN=target/release"  # two builds against each other
#
# Each variant runs cost.sh with its VAR=VALUE settings added to the environment (COST_* and
# OTEL_* pass through). CONCURRENCY and SECONDS are cost.sh's (COST_AB_CONC, default 32;
# COST_AB_SECS, default 6). Binaries: target/release (built once here) unless COST_AB_BIN names
# a directory holding switchboard, loadgen, console and otlp-sink; a variant's own
# COST_AB_BIN=DIR runs that variant's binaries from DIR (two builds against each other). Prints each run's line, then per
# variant the median CPU µs per transaction with its range, and for each variant after the first
# the median of its paired ratios with their quartiles, and their geometric mean with a 90 %
# bootstrap interval. The geometric mean (the mean of the ratios' logarithms) because the mean of
# the ratios themselves leans upward by about the square of one run's spread: with runs spreading
# ±10 %, an A/A reads +1 % to +3 % before any change at all.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 3 && "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] || die "usage: $0 ROUNDS LABEL=[VAR=VALUE …] LABEL=[VAR=VALUE …] …"
rounds="$1"
shift
labels=()
settings=()
for v in "$@"; do
    [[ "$v" == *=* && "${v%%=*}" =~ ^[A-Za-z0-9_.-]+$ ]] || die "a variant is LABEL=[VAR=VALUE …], not: $v"
    labels+=("${v%%=*}")
    settings+=("${v#*=}")
done
n=${#labels[@]}

BIN="${COST_AB_BIN:-$ROOT/target/release}"
if [[ -z "${COST_AB_BIN:-}" ]]; then
    cargo build -q --release -p switchboard --bin switchboard -p switchboard-bench --bin loadgen \
        --bin otlp-sink -p switchboard-console --bin console || die "the release build failed"
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for ((r = 0; r < rounds; r++)); do
    for ((k = 0; k < n; k++)); do
        # Round r starts at variant r mod n, and every other round runs backwards.
        if ((r % 2 == 0)); then i=$(((r + k) % n)); else i=$(((r + n - k) % n)); fi
        # shellcheck disable=SC2206 # the settings are words on purpose: VAR=VALUE …
        vars=(${settings[$i]})
        bin="$BIN"
        for var in "${vars[@]}"; do [[ "$var" == COST_AB_BIN=* ]] && bin="${var#COST_AB_BIN=}"; done
        line="$(env "${vars[@]}" SKIP_BUILD=1 bash "$ROOT/scripts/cost.sh" "$bin" "${COST_AB_CONC:-32}" "${COST_AB_SECS:-6}")" ||
            die "cost.sh failed for ${labels[$i]} in round $((r + 1))"
        echo "round $((r + 1)) ${labels[$i]}: $line"
        cpu="$(grep -oE '[0-9.]+ µs CPU per transaction' <<<"$line" | head -1 | grep -oE '^[0-9.]+')"
        echo "$r $i $cpu" >>"$results"
    done
done

python3 - "$results" "${labels[@]}" <<'EOF'
import math, random, statistics, sys

path, labels = sys.argv[1], sys.argv[2:]
runs = {}
for line in open(path):
    r, i, cpu = line.split()
    runs[(int(r), int(i))] = float(cpu)
rounds = sorted({r for r, _ in runs})

def quartiles(xs):
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]

def mean_interval(logs, draws=5000):
    # 90 % bootstrap interval of the mean log ratio: how far the rounds' spread lets it move.
    # Seeded, so one set of runs always prints the same interval.
    rng = random.Random(1)
    means = sorted(statistics.fmean(rng.choices(logs, k=len(logs))) for _ in range(draws))
    return means[draws // 20], means[draws - 1 - draws // 20]

for i, label in enumerate(labels):
    cpu = [runs[(r, i)] for r in rounds]
    line = f"{label}: {statistics.median(cpu):.1f} µs CPU per transaction (median of {len(cpu)}, {min(cpu):.1f}–{max(cpu):.1f})"
    if i > 0:
        ratios = [runs[(r, i)] / runs[(r, 0)] for r in rounds]
        lo, hi = quartiles(ratios)
        pct = lambda x: f"{(x - 1) * 100:+.1f} %"
        line += f"; against {labels[0]}: paired median {pct(statistics.median(ratios))} (quartiles {pct(lo)} to {pct(hi)})"
        logs = [math.log(x) for x in ratios]
        m_lo, m_hi = mean_interval(logs)
        geo = lambda x: pct(math.exp(x))
        line += f", geometric mean {geo(statistics.fmean(logs))} (90 % interval {geo(m_lo)} to {geo(m_hi)})"
    print(line)
EOF
