#!/usr/bin/env bash
# OTLP conformance (`make otlp-check`): what the services export, decoded by code nobody here
# wrote. A receiver built on the official `opentelemetry-proto` Python package
# (scripts/otlp_receiver.py) listens on a free port; a live all-in-one `switchboard run` on the
# embedded broker exports to it (OTEL_EXPORTER_OTLP_ENDPOINT); one POST /messages with a known
# traceparent goes through; the receiver checks the trace id, the parent chain across gateway,
# relay and processor, service.name, span kinds and the HTTP, messaging and RPC attributes.
#
# - opentelemetry-proto lives in the venv under .venv (gitignored), installed from PyPI on first
#   use (OTLP_CHECK_PROTO pins another version spec). No Python or no package: the check FAILS.
# - The server is the debug binary (built here; SKIP_BUILD=1 uses the one already built, and
#   SWITCHBOARD_BIN another binary); logs in .run/otlp-check/.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENV="$ROOT/.venv"
run_dir otlp-check

command -v python3 >/dev/null || die "python3 is needed (apt-get install python3 python3-venv)"
if ! "$VENV/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
    say "installing opentelemetry-proto into $VENV"
    if [[ ! -x "$VENV/bin/pip" ]]; then
        if ! python3 -m venv "$VENV"; then
            # Debian splits venv/ensurepip out of python3.
            [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || die "python3 -m venv failed (install python3-venv)"
            rm -rf "$VENV"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            python3 -m venv "$VENV" || die "python3 -m venv failed"
        fi
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check "${OTLP_CHECK_PROTO:-opentelemetry-proto}" ||
        die "pip could not install opentelemetry-proto"
fi
"$VENV/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' ||
    die "opentelemetry-proto does not import from $VENV"
"$VENV/bin/pip" show opentelemetry-proto 2>/dev/null | sed -n 's/^Version: /opentelemetry-proto /p' >&2

BIN="$(switchboard_bin)"

GATEWAY="127.0.0.1:$(free_port)"
PROCESSOR="127.0.0.1:$(free_port)"
COLLECTOR_PORT="$(free_port)"
TRACE="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
CALLER="$(python3 -c 'import secrets; print(secrets.token_hex(8))')"

server_pid="" receiver_pid=""
cleanup() {
    for pid in $server_pid $receiver_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

"$VENV/bin/python" "$ROOT/scripts/otlp_receiver.py" --port "$COLLECTOR_PORT" --trace-id "$TRACE" \
    --caller-span "$CALLER" --timeout "${OTLP_CHECK_TIMEOUT:-60}" >"$RUN_DIR/receiver.log" 2>&1 &
receiver_pid=$!

say "starting $BIN run on $GATEWAY, exporting to the receiver on 127.0.0.1:$COLLECTOR_PORT"
env -u KAFKA_BROKERS -u AMQP_URL -u OTEL_SDK_DISABLED -u OTEL_TRACES_EXPORTER -u OTEL_SERVICE_NAME \
    -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \
    GATEWAY_ADDR="$GATEWAY" PROCESSOR_ADDR="$PROCESSOR" \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$COLLECTOR_PORT" OTEL_BSP_SCHEDULE_DELAY=100 \
    RUST_LOG="${OTLP_CHECK_LOG:-info}" "$BIN" run >"$RUN_DIR/switchboard.log" 2>&1 &
server_pid=$!

wait_for_http "http://$GATEWAY/healthz" "$server_pid" 30 "$RUN_DIR/switchboard.log"

say "POST /messages with traceparent 00-$TRACE-$CALLER-01"
python3 - "$GATEWAY" "00-$TRACE-$CALLER-01" <<'PY' || die "the request through the chain failed"
import json, sys, urllib.request
req = urllib.request.Request(f"http://{sys.argv[1]}/messages", data=json.dumps({"message": "hello world"}).encode(),
                             headers={"Content-Type": "application/json", "traceparent": sys.argv[2]})
with urllib.request.urlopen(req, timeout=10) as r:
    body = json.load(r)
    print(f"HTTP {r.status}: {body['message']}", file=sys.stderr)
PY

status=0
wait "$receiver_pid" || status=$?
receiver_pid=""
cat "$RUN_DIR/receiver.log" >&2
kill -0 "$server_pid" 2>/dev/null || die "switchboard died during the run; see $RUN_DIR/switchboard.log"
[[ $status == 0 ]] || die "the exported spans failed the checks (receiver exit $status); server log: $RUN_DIR/switchboard.log"
say "passed"
