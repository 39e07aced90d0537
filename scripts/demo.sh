#!/usr/bin/env bash
# The chain on real brokers with every service as its own process: sends "hello world",
# prints each service's hop log and the reply, stops everything it started (also on failure).
# Exit status: 0 when the reply is the Go example's final string.
#
# TLS=1: every hop encrypted (scripts/tls.sh): Kafka and RabbitMQ through stunnel4 with client
# certificates, gRPC with mutual TLS, the gateway on HTTPS with a bearer token; the ports are
# 19093 (Kafka TLS), 19671 (AMQP TLS), 19051 (processor), 19443 (gateway) unless set.
set -euo pipefail
# The build's prerequisites and this script's own tools (curl, python3; with TLS=1 stunnel4 and
# openssl), installed when missing by the script `make demo` uses.
tools=(curl python3)
[[ "${TLS:-0}" == 1 ]] && tools+=(stunnel4 openssl)
bash "$(dirname "${BASH_SOURCE[0]}")/prereqs.sh" "${tools[@]}"
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

EXPECTED="HELLO WORLD FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER"
MESSAGE="${1:-hello world}"

SCHEME=http
CURL=(curl -sS)
if [[ "${TLS:-0}" == 1 ]]; then
    source "$(dirname "${BASH_SOURCE[0]}")/tls.sh"
    : "${TLS_GATEWAY_ADDR:=127.0.0.1:19443}" "${TLS_PROCESSOR_ADDR:=127.0.0.1:19051}"
    export GATEWAY_ADDR="$TLS_GATEWAY_ADDR" PROCESSOR_ADDR="$TLS_PROCESSOR_ADDR"
    export SWITCHBOARD_ADMIN_ADDR_relay="${SWITCHBOARD_ADMIN_ADDR_relay:-127.0.0.1:19101}"
    export SWITCHBOARD_ADMIN_ADDR_processor="${SWITCHBOARD_ADMIN_ADDR_processor:-127.0.0.1:19102}"
    export SWITCHBOARD_ADMIN_ADDR_worker="${SWITCHBOARD_ADMIN_ADDR_worker:-127.0.0.1:19103}"
    trap 'stop_all; tls_teardown' EXIT
    tls_setup
    SCHEME=https
    CURL=(curl -sS --cacert "$CERTS/ca.pem" -H "@$CERTS/auth-header")
else
    trap stop_all EXIT
    use_brokers
fi
start_all

body=$(printf '{"message": "%s"}' "$MESSAGE")
reply=$("${CURL[@]}" --max-time 30 -H 'Content-Type: application/json' -d "$body" "$SCHEME://$GATEWAY_ADDR/messages")
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

if [[ -n "${AMQP_URL:-}${AMQP_URL_FILE:-}" ]]; then
    echo "--- job over RabbitMQ"
    accepted=$("${CURL[@]}" --max-time 30 -H 'Content-Type: application/json' -d "$body" "$SCHEME://$GATEWAY_ADDR/jobs")
    job=$(printf '%s' "$accepted" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    for ((i = 0; i < 100; i++)); do
        status=$("${CURL[@]}" --max-time 5 "$SCHEME://$GATEWAY_ADDR/jobs/$job")
        state=$(printf '%s' "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
        [[ "$state" == done || "$state" == failed ]] && break
        sleep 0.1
    done
    echo "$status"
    [[ "$state" == done ]] || { echo "demo: job $job ended $state" >&2; exit 1; }
    grep -F "id=$job" "$RUN_DIR/worker.log" || true
fi
echo "--- console (http://$CONSOLE_ADDR): services, the relay group's lag, the jobs queue's depth"
"${CURL[@]}" --max-time 5 "http://$CONSOLE_ADDR/api/overview" 2>/dev/null | python3 -c '
import json, sys
o = json.load(sys.stdin)
for s in o["services"]:
    up = sum(1 for i in s["instances"] if i["up"])
    print("service %s: %d/%d up" % (s["name"], up, len(s["instances"])))
for t in o["topics"]:
    print("topic %s group %s: lag %s" % (t["name"], t["group"], t["lag"]))
for q in o["queues"]:
    print("queue %s: %s ready, %s consumers" % (q["name"], q["messages"], q["consumers"]))
' || echo "(console not answering)"
echo
echo "\"$message\""
