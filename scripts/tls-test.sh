#!/usr/bin/env bash
# TLS on every hop, with the separate services (part of `make test-real`): the final string over
# HTTPS with a bearer token, then each hop refusing what it must refuse with a clear error and
# no crash loop, then no secret in any log. Fails (never skips) when a broker or tool is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
source "$(dirname "${BASH_SOURCE[0]}")/tls.sh"

EXPECTED="HELLO WORLD FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER"
export GATEWAY_ADDR="${TLS_GATEWAY_ADDR:-127.0.0.1:19443}" PROCESSOR_ADDR="${TLS_PROCESSOR_ADDR:-127.0.0.1:19051}"
export SWITCHBOARD_ADMIN_ADDR_relay=127.0.0.1:19101 SWITCHBOARD_ADMIN_ADDR_processor=127.0.0.1:19102
export SWITCHBOARD_ADMIN_ADDR_worker=127.0.0.1:19103
REFUSED_DIR="$TLS_DIR/refused"

fail() { echo "tls-test: FAIL: $*" >&2; exit 1; }
ok() { echo "tls-test: ok: $*" >&2; }
for tool in curl openssl stunnel4 sha256sum; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

trap 'stop_all; tls_teardown' EXIT
tls_setup
build_services
start_services
HTTPS=(curl -sS --max-time 30 --cacert "$CERTS/ca.pem")
URL="https://$GATEWAY_ADDR"

# 1. The final string over every encrypted hop.
reply=$("${HTTPS[@]}" -H "@$CERTS/auth-header" -H 'Content-Type: application/json' \
    -d '{"message": "hello world"}' "$URL/messages")
message=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("message",""))' 2>/dev/null || true)
[[ "$message" == "$EXPECTED" ]] || fail "final string over HTTPS: got $reply"
ok "curl --cacert over HTTPS with a bearer token: \"$message\""

# A job over amqps:// (worker ↔ RabbitMQ through stunnel, worker → processor with mTLS).
accepted=$("${HTTPS[@]}" -H "@$CERTS/auth-header" -H 'Content-Type: application/json' -d '{"message": "hello world"}' "$URL/jobs")
job=$(printf '%s' "$accepted" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || fail "POST /jobs: $accepted"
state=""
for ((i = 0; i < 300; i++)); do
    status=$("${HTTPS[@]}" -H "@$CERTS/auth-header" "$URL/jobs/$job")
    state=$(printf '%s' "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [[ "$state" == done || "$state" == failed ]] && break
    sleep 0.1
done
[[ "$state" == done ]] || fail "job over amqps ended '$state': $status"
ok "job done over amqps:// and gRPC mTLS"

# 2. Gateway: no token, a wrong token → 401 with WWW-Authenticate and the JSON error; the
#    probes stay open; another CA or plain HTTP gets nothing.
out=$("${HTTPS[@]}" -i -H 'Content-Type: application/json' -d '{"message": "x"}' "$URL/messages")
grep -q '^HTTP/1.1 401' <<<"$out" || fail "no token: $out"
grep -qi '^www-authenticate: Bearer realm="switchboard"' <<<"$out" || fail "no WWW-Authenticate: $out"
grep -q '"code":"unauthorized"' <<<"$out" || fail "no JSON error: $out"
printf 'Authorization: Bearer not-the-token\n' >"$TLS_DIR/wrong-header"
out=$("${HTTPS[@]}" -i -H "@$TLS_DIR/wrong-header" -H 'Content-Type: application/json' -d '{"message": "x"}' "$URL/messages")
grep -q '^HTTP/1.1 401' <<<"$out" && grep -q 'error="invalid_token"' <<<"$out" || fail "wrong token: $out"
[[ "$("${HTTPS[@]}" -o /dev/null -w '%{http_code}' "$URL/healthz")" == 200 ]] || fail "/healthz needs a token"
ok "gateway: 401 + WWW-Authenticate without / with a wrong token; /healthz open"
rc=0; curl -sS --max-time 10 --cacert "$CERTS/wrong-ca.pem" "$URL/healthz" >/dev/null 2>"$TLS_DIR/curl-wrong-ca.err" || rc=$?
[[ $rc == 60 ]] || fail "curl trusting another CA: exit $rc ($(cat "$TLS_DIR/curl-wrong-ca.err"))"
rc=0; curl -sS --max-time 10 "http://$GATEWAY_ADDR/healthz" >/dev/null 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "plain HTTP got an answer from the HTTPS gateway"
ok "gateway: a client trusting another CA fails verification (curl exit 60); plain HTTP gets no answer"

# 3. Processor (mutual TLS): a plaintext gRPC client and a TLS client without a certificate are
#    refused at the handshake, logged, and the processor keeps serving.
rc=0; curl -sS --max-time 10 --http2-prior-knowledge "http://$PROCESSOR_ADDR/" >/dev/null 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "a plaintext client got an answer from the TLS-only processor"
rc=0; curl -sS --max-time 10 --http2 --cacert "$CERTS/ca.pem" "https://$PROCESSOR_ADDR/" >/dev/null 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "a client without a certificate got an answer from the mTLS processor"
sleep 0.5
grep -qi 'handshake' "$RUN_DIR/processor.log" || fail "the processor did not log the refused handshakes"
kill -0 "${SERVICE_PID_OF[processor]}" || fail "the processor died"
reply=$("${HTTPS[@]}" -H "@$CERTS/auth-header" -H 'Content-Type: application/json' -d '{"message": "hello world"}' "$URL/messages")
grep -qF "$EXPECTED" <<<"$reply" || fail "chain broken after the refusals: $reply"
ok "processor: plaintext and certificate-less clients refused (logged: $(grep -i -m1 'handshake' "$RUN_DIR/processor.log" | cut -c1-160))"

# 4. Kafka and RabbitMQ: a service that does not trust the broker's CA, or has no client
#    certificate, exits once with a clear error (no crash loop: nothing restarts it here, and it
#    does not hang).
mkdir -p "$REFUSED_DIR"
# refused NAME PATTERN ENV...: runs the binary NAME with ENV changes; it must exit non-zero
# within 90 s and its output must match PATTERN.
REFUSALS=0
refused() {
    REFUSALS=$((REFUSALS + 1))
    local name="$1" pattern="$2" log="$REFUSED_DIR/$1-$REFUSALS.log"; shift 2
    local rc=0
    env "$@" SWITCHBOARD_ADMIN_ADDR=127.0.0.1:19110 PROCESSOR_ADDR=127.0.0.1:19052 \
        timeout 90 "$BIN_DIR/$name" >"$log" 2>&1 || rc=$?
    [[ $rc != 0 && $rc != 124 ]] || { tail -n 20 "$log" >&2; fail "$name with $*: exit $rc (want a clean failure)"; }
    grep -qiE "$pattern" "$log" || { tail -n 20 "$log" >&2; fail "$name with $*: no clear error ($pattern)"; }
    ok "$name refused with $*: $(grep -iE -m1 "$pattern" "$log" | cut -c1-180)"
}
refused processor "SSL handshake failed.*certificate verify failed" "KAFKA_SSL_CA=$CERTS/wrong-ca.pem"
refused processor "certificate required" -u KAFKA_SSL_CERT -u KAFKA_SSL_KEY
refused worker "handshake.*failed: .*certificate verify failed" "AMQP_TLS_CA=$CERTS/wrong-ca.pem"
refused worker "handshake.*failed: .+" -u AMQP_TLS_CLIENT_CERT -u AMQP_TLS_CLIENT_KEY

# 5. No secret in any log of the run: the token, the AMQP password in its URL, the keys.
stop_services
secrets=("$(cat "$CERTS/token")" "guest:guest")
for key in "$CERTS"/*.key; do secrets+=("$(sed -n 2p "$key")"); done
for s in "${secrets[@]}"; do
    if grep -rqF -- "$s" "$RUN_DIR"/*.log "$TLS_DIR"/*.log "$REFUSED_DIR"; then
        fail "a secret appears in the logs: $(grep -rlF -- "$s" "$RUN_DIR"/*.log "$TLS_DIR"/*.log "$REFUSED_DIR" | head -3)"
    fi
done
ok "no token, password or key material in $(ls "$RUN_DIR"/*.log "$TLS_DIR"/*.log "$REFUSED_DIR"/*.log | wc -l) logs"
# --help with secrets in the environment shows none of them.
for bin in gateway relay processor worker; do
    if AMQP_URL="amqps://u:help-secret@h/v" KAFKA_SASL_PASSWORD=help-secret "$BIN_DIR/$bin" --help | grep -qF help-secret; then
        fail "$bin --help shows a secret from the environment"
    fi
done
ok "--help of every binary shows no secret from the environment"
echo "tls-test: all hops encrypted and refusing; \"$EXPECTED\""
