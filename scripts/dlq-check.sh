#!/usr/bin/env bash
# Dead letters seen by clients nobody here wrote (`make test-real` runs it): the all-in-one on
# real Kafka (KAFKA_BROKERS) and RabbitMQ (AMQP_URL), fresh topic and queue names; confluent-kafka
# writes a poison request and pika a poison job, then each reads its dead-letter topic or queue
# and checks the origin headers (scripts/dlq_check.py); `switchboard dlq list --by-reason --json`
# must print valid JSON counting both; `dlq purge --yes` then empties them.
#
# The Python clients live in the venv .venv (gitignored), installed from PyPI on first use.
# SKIP_BUILD=1 uses the binary already built; SWITCHBOARD_BIN another one.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_dir dlq-check
[[ -n "${KAFKA_BROKERS:-}" ]] || die "KAFKA_BROKERS must point at a Kafka broker (make test-real starts tansu)"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

VENV="$ROOT/.venv"
"$VENV/bin/python" -c 'import pika, confluent_kafka' 2>/dev/null || venv_install "$VENV" pika confluent-kafka

BIN="$(switchboard_bin)"

# shellcheck source=scripts/run-names.sh
source "$ROOT/scripts/run-names.sh"
run_names dlq-check
export SWITCHBOARD_JOBS_QUEUE="dlq-check.$stamp.jobs" SWITCHBOARD_JOB_EVENTS_EXCHANGE="dlq-check.$stamp.job-events" \
    SWITCHBOARD_DLQ_GROUP="dlq-check.$stamp.dlq"
GATEWAY="127.0.0.1:$(free_port)"

server_pid=""
cleanup() {
    stop_pids ${server_pid:+"$server_pid"}
    "$VENV/bin/python" "$ROOT/scripts/dlq_check.py" cleanup >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "starting $BIN run on $GATEWAY (Kafka $KAFKA_BROKERS, RabbitMQ)"
GATEWAY_ADDR="$GATEWAY" PROCESSOR_ADDR="127.0.0.1:$(free_port)" RUST_LOG="${DLQ_CHECK_LOG:-info}" \
    "$BIN" run >"$RUN_DIR/switchboard.log" 2>&1 &
server_pid=$!
wait_for_http "http://$GATEWAY/readyz" "$server_pid" 60 "$RUN_DIR/switchboard.log"

say "poison request (confluent-kafka) and poison job (pika); both read back from their dead-letter queues"
"$VENV/bin/python" "$ROOT/scripts/dlq_check.py" check || die "origin headers not seen by the foreign clients; see $RUN_DIR/switchboard.log"

say "switchboard dlq list --by-reason --json"
"$BIN" dlq list --by-reason --json >"$RUN_DIR/by-reason.json" 2>"$RUN_DIR/dlq.log" || die "dlq list failed; see $RUN_DIR/dlq.log"
python3 - "$RUN_DIR/by-reason.json" <<'PY' || die "dlq list --by-reason --json: not the expected JSON"
import json, sys
doc = json.load(open(sys.argv[1]))
counts = {}
for row in doc["by_reason"]:
    counts[row["source"]] = counts.get(row["source"], 0) + row["count"]
assert counts == {"requests": 1, "jobs": 1}, doc
print("by reason:", doc["by_reason"])
PY

say "switchboard dlq purge --yes"
"$BIN" dlq purge --yes --json >"$RUN_DIR/purge.json" 2>>"$RUN_DIR/dlq.log" || die "dlq purge failed; see $RUN_DIR/dlq.log"
"$BIN" dlq list --json >"$RUN_DIR/after.json" 2>>"$RUN_DIR/dlq.log" || die "dlq list failed; see $RUN_DIR/dlq.log"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["items"] == [], d' "$RUN_DIR/after.json" \
    || die "dead letters left after the purge: $(cat "$RUN_DIR/after.json")"
kill -0 "$server_pid" 2>/dev/null || die "switchboard died during the check; see $RUN_DIR/switchboard.log"
say "passed"
