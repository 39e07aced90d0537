# Sourced by demo.sh (TLS=1) and test-real.sh: every hop encrypted on this machine.
#
#   tls_setup     certificates (scripts/certs.sh), tansu on $TLS_TANSU_PORT (plaintext, loopback
#                 only) advertising the stunnel port, stunnel4 in front of tansu and of RabbitMQ
#                 (both require a client certificate), a bearer token, and the environment that
#                 makes every service use TLS: Kafka over TLS with a client certificate, amqps://
#                 with a client certificate (URL from a file), gRPC with mutual TLS, the gateway
#                 on HTTPS with bearer tokens.
#   tls_teardown  stops what tls_setup started.
#
# tansu 0.6's own --cert/--key cannot be used (clap refuses the two together, and --cert alone
# still serves plaintext), so stunnel terminates TLS. SASL towards Kafka is not exercised: with
# --authentication tansu refuses `tansu user create` itself (NotAuthenticated), so no SCRAM user
# can exist. RabbitMQ's login (SASL PLAIN from the URL) runs inside the amqps:// session.

TLS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TLS_DIR="${TLS_DIR:-$TLS_ROOT/.run/tls}"
CERTS="$TLS_DIR/certs"
: "${TLS_TANSU_PORT:=19094}" "${TLS_KAFKA_PORT:=19093}" "${TLS_AMQP_PORT:=19671}"
: "${TLS_RABBIT_UPSTREAM:=127.0.0.1:5672}" "${TLS_VHOST:=tls}"
TLS_STARTED_TANSU=0

tls_die() { echo "tls: $*" >&2; return 1; }

# tls_wait_port PORT SECS
tls_wait_port() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
        sleep 0.1
    done
    tls_die "nothing answers on 127.0.0.1:$1 after $2 s"
}

tls_stunnel() {
    command -v stunnel4 >/dev/null || tls_die "stunnel4 is not installed (apt-get install stunnel4)" || return 1
    cat >"$TLS_DIR/stunnel.conf" <<CONF
foreground = no
pid = $TLS_DIR/stunnel.pid
output = $TLS_DIR/stunnel.log
debug = notice
; mutual TLS: a client without a certificate from our CA is refused
[kafka]
accept = 127.0.0.1:$TLS_KAFKA_PORT
connect = 127.0.0.1:$TLS_TANSU_PORT
cert = $CERTS/server.pem
key = $CERTS/server.key
CAfile = $CERTS/ca.pem
verifyChain = yes
requireCert = yes
[amqp]
accept = 127.0.0.1:$TLS_AMQP_PORT
connect = $TLS_RABBIT_UPSTREAM
cert = $CERTS/server.pem
key = $CERTS/server.key
CAfile = $CERTS/ca.pem
verifyChain = yes
requireCert = yes
CONF
    stunnel4 "$TLS_DIR/stunnel.conf" || tls_die "stunnel4 failed; see $TLS_DIR/stunnel.log" || return 1
    tls_wait_port "$TLS_KAFKA_PORT" 10 && tls_wait_port "$TLS_AMQP_PORT" 10
}

tls_setup() {
    mkdir -p "$TLS_DIR"
    bash "$TLS_ROOT/scripts/certs.sh" "$CERTS"
    # The bearer token: random per run, only its SHA-256 reaches the gateway; curl reads the
    # header from a file, so the token never shows on a command line.
    umask 077
    openssl rand -hex 24 >"$CERTS/token"
    printf 'Authorization: Bearer %s\n' "$(cat "$CERTS/token")" >"$CERTS/auth-header"
    printf '%s' "$(cat "$CERTS/token")" | sha256sum | cut -d' ' -f1 >"$CERTS/tokens.sha256"
    printf 'amqps://guest:guest@127.0.0.1:%s/%s\n' "$TLS_AMQP_PORT" "$TLS_VHOST" >"$CERTS/amqp-url"
    umask 022
    # The TLS runs' own vhost (queues of this run only), created here: a fresh broker has only "/".
    if ! rabbitmqctl list_vhosts -q 2>/dev/null | grep -qx "$TLS_VHOST"; then
        command -v rabbitmqctl >/dev/null ||
            tls_die "vhost $TLS_VHOST missing and no rabbitmqctl to create it (or set TLS_VHOST)" || return 1
        rabbitmqctl add_vhost "$TLS_VHOST" >/dev/null || tls_die "rabbitmqctl add_vhost $TLS_VHOST failed" || return 1
    fi
    rabbitmqctl set_permissions -p "$TLS_VHOST" guest '.*' '.*' '.*' >/dev/null ||
        tls_die "rabbitmqctl set_permissions on vhost $TLS_VHOST failed" || return 1

    # tansu listens on loopback in plaintext; clients only ever get the TLS port from it.
    if ! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$TLS_TANSU_PORT" 2>/dev/null; then TLS_STARTED_TANSU=1; fi
    # Its own tansu (own state and pid file): one advertising a plaintext port would send the
    # clients there.
    (unset KAFKA_BROKERS; TANSU_ADDR="127.0.0.1:$TLS_TANSU_PORT" TANSU_STATE="$TLS_DIR/tansu" \
        TANSU_ADVERTISED="tcp://127.0.0.1:$TLS_KAFKA_PORT" bash "$TLS_ROOT/scripts/brokers.sh" start) || return 1
    tls_stunnel || return 1

    export KAFKA_BROKERS="127.0.0.1:$TLS_KAFKA_PORT"
    export KAFKA_SSL_CA="$CERTS/ca.pem" KAFKA_SSL_CERT="$CERTS/client.pem" KAFKA_SSL_KEY="$CERTS/client.key"
    unset AMQP_URL
    export AMQP_URL_FILE="$CERTS/amqp-url"
    export AMQP_TLS_CA="$CERTS/ca.pem" AMQP_TLS_CLIENT_CERT="$CERTS/client.pem" AMQP_TLS_CLIENT_KEY="$CERTS/client.key"
    # The processor: TLS only, clients must present a certificate from our CA.
    export PROCESSOR_TLS_CERT="$CERTS/server.pem" PROCESSOR_TLS_KEY="$CERTS/server.key"
    export PROCESSOR_TLS_CLIENT_CA="$CERTS/ca.pem"
    # The relay and the worker: check the processor against our CA, present their certificate.
    export PROCESSOR_TLS_CA="$CERTS/ca.pem" PROCESSOR_TLS_CLIENT_CERT="$CERTS/client.pem"
    export PROCESSOR_TLS_CLIENT_KEY="$CERTS/client.key"
    export GATEWAY_TLS_CERT="$CERTS/server.pem" GATEWAY_TLS_KEY="$CERTS/server.key"
    export SWITCHBOARD_AUTH_TOKENS_FILE="$CERTS/tokens.sha256"
    echo "tls: Kafka on 127.0.0.1:$TLS_KAFKA_PORT (TLS, client cert), RabbitMQ on 127.0.0.1:$TLS_AMQP_PORT (TLS, client cert), gRPC mTLS, HTTPS + bearer token" >&2
}

tls_teardown() {
    if [[ -f "$TLS_DIR/stunnel.pid" ]]; then
        kill "$(cat "$TLS_DIR/stunnel.pid")" 2>/dev/null || true
        rm -f "$TLS_DIR/stunnel.pid"
    fi
    if [[ $TLS_STARTED_TANSU == 1 ]]; then
        TANSU_ADDR="127.0.0.1:$TLS_TANSU_PORT" TANSU_STATE="$TLS_DIR/tansu" bash "$TLS_ROOT/scripts/brokers.sh" stop || true
        TLS_STARTED_TANSU=0
    fi
}
