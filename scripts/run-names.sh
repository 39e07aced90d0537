# Sourced by the scripts that run the services on a shared broker (bench, soak, scale test, dlq-check):
# `run_names PREFIX` exports topics and relay group of this run only (PREFIX.<unix time>.*), since
# a shared broker may hold another run's backlog. Sets `stamp`.
run_names() {
    stamp="$(date +%s)"
    export SWITCHBOARD_REQUESTS_TOPIC="$1.$stamp.requests" SWITCHBOARD_REPLIES_TOPIC="$1.$stamp.replies"
    export SWITCHBOARD_REQUESTS_DLQ="$1.$stamp.requests.dlq"
    export SWITCHBOARD_DLQ_TOPIC="$SWITCHBOARD_REQUESTS_DLQ" # the name scripts/brokers.sh reads
    export SWITCHBOARD_RELAY_GROUP="$1.$stamp.relay"
}
