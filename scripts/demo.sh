#!/usr/bin/env bash
# The chain on real brokers with every service as its own process: sends "hello world",
# prints each service's hop log and the reply, stops everything it started (also on failure).
# Exit status: 0 when the reply is the seed string.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

EXPECTED="HELLO WORLD FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER"
MESSAGE="${1:-hello world}"

trap stop_all EXIT
use_brokers
build_services
start_services

body=$(printf '{"message": "%s"}' "$MESSAGE")
reply=$(curl -sS --max-time 30 -H 'Content-Type: application/json' -d "$body" "http://$GATEWAY_ADDR/messages")
id=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))' 2>/dev/null || true)
sleep 0.2
for name in gateway relay processor; do
    echo "--- $name (pid log .run/$name.log)"
    if [[ -n "$id" ]]; then grep -F "id=$id" "$RUN_DIR/$name.log" || true; else tail -n 5 "$RUN_DIR/$name.log"; fi
done
echo "--- reply"
echo "$reply"
message=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("message",""))' 2>/dev/null || true)
if [[ "$MESSAGE" == "hello world" && "$message" != "$EXPECTED" ]]; then
    echo "demo: unexpected reply" >&2
    exit 1
fi
[[ -n "$message" ]] || { echo "demo: no reply message" >&2; exit 1; }

if [[ -n "${AMQP_URL:-}" ]]; then
    echo "--- job over RabbitMQ"
    accepted=$(curl -sS --max-time 30 -H 'Content-Type: application/json' -d "$body" "http://$GATEWAY_ADDR/jobs")
    job=$(printf '%s' "$accepted" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    for ((i = 0; i < 100; i++)); do
        status=$(curl -sS --max-time 5 "http://$GATEWAY_ADDR/jobs/$job")
        state=$(printf '%s' "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
        [[ "$state" == done || "$state" == failed ]] && break
        sleep 0.1
    done
    echo "$status"
    [[ "$state" == done ]] || { echo "demo: job $job ended $state" >&2; exit 1; }
    grep -F "id=$job" "$RUN_DIR/worker.log" || true
fi
echo
echo "\"$message\""
