#!/usr/bin/env bash
# API conformance (`make api-check`): schemathesis, every check, against a live all-in-one
# `switchboard run` on the embedded broker, driven by the gateway's own GET /openapi.json.
#
# - schemathesis lives in a venv under .venv (gitignored), installed from PyPI on first use
#   (API_CHECK_SCHEMATHESIS pins another version spec).
# - The server is the debug binary (built here; SKIP_BUILD=1 uses the one already built, and
#   SWITCHBOARD_BIN another binary), on free ports, with KAFKA_BROKERS and AMQP_URL unset;
#   its log goes to .run/api-check/switchboard.log.
# - API_CHECK_EXAMPLES (default 60) bounds the examples per operation so a run stays well
#   under 3 minutes; API_CHECK_SEED makes a run reproducible.
# Exits non-zero on any schemathesis failure, or when the server does not come up or dies.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENV="$ROOT/.venv"
EXAMPLES="${API_CHECK_EXAMPLES:-60}"
run_dir api-check

[[ -x "$VENV/bin/schemathesis" ]] || venv_install "$VENV" "${API_CHECK_SCHEMATHESIS:-schemathesis}"
"$VENV/bin/schemathesis" --version

BIN="$(switchboard_bin)"

GATEWAY="127.0.0.1:$(free_port)"
PROCESSOR="127.0.0.1:$(free_port)"

server_pid=""
trap 'stop_pids ${server_pid:+"$server_pid"}' EXIT

say "starting $BIN run on $GATEWAY (embedded broker)"
env -u KAFKA_BROKERS -u AMQP_URL GATEWAY_ADDR="$GATEWAY" PROCESSOR_ADDR="$PROCESSOR" \
    RUST_LOG="${API_CHECK_LOG:-warn}" "$BIN" run >"$RUN_DIR/switchboard.log" 2>&1 &
server_pid=$!

wait_for_http "http://$GATEWAY/healthz" "$server_pid" 30 "$RUN_DIR/switchboard.log"

seed=()
[[ -n "${API_CHECK_SEED:-}" ]] && seed=(--seed "$API_CHECK_SEED")
say "schemathesis: every check, at most $EXAMPLES examples per operation"
status=0
"$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" --no-color \
    run "http://$GATEWAY/openapi.json" \
    --checks all \
    --max-examples "$EXAMPLES" \
    --workers 1 \
    --request-timeout 15 \
    "${seed[@]}" || status=$?

kill -0 "$server_pid" 2>/dev/null || die "switchboard died during the run; see $RUN_DIR/switchboard.log"
[[ $status == 0 ]] || die "schemathesis found failures (exit $status); server log: $RUN_DIR/switchboard.log"
say "passed"
