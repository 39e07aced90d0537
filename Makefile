# switchboard — every command a developer or CI needs. `make demo` and `make test` are the two
# that matter on a fresh machine.
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: prereqs demo run-all test test-real api-check lint audit bench versus dist brokers brokers-stop fmt kill-test soak scale-test k8s-check otlp-check console-test

## What the build needs (cmake, C++ compiler, pkg-config, OpenSSL headers): installed if missing.
prereqs:
	@bash scripts/prereqs.sh

## The chain on the embedded broker: sends "hello world", prints the log and the reply.
demo: prereqs
	$(CARGO) run -q -p switchboard --bin switchboard -- demo "hello world"

## Serve until Ctrl-C: all-in-one on the embedded broker, or every service as its own process
## when KAFKA_BROKERS is set (see scripts/run-all.sh).
run-all:
	@if [ -n "$$KAFKA_BROKERS" ]; then bash scripts/run-all.sh; \
	else $(CARGO) run -q -p switchboard --bin switchboard -- run; fi

## Unit, embedded-broker and end-to-end tests (no external broker needed).
test: prereqs
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

## Conformance suites and the end-to-end chain on real brokers (starts tansu, checks RabbitMQ).
test-real:
	bash scripts/test-real.sh

## schemathesis (every check) against a live all-in-one on the embedded broker, from its own
## GET /openapi.json (venv in .venv; see scripts/api-check.sh).
api-check:
	bash scripts/api-check.sh

## The exported traces checked by a receiver built on the official opentelemetry-proto Python
## package, against a live all-in-one (venv in .venv; see scripts/otlp-check.sh).
otlp-check:
	bash scripts/otlp-check.sh

## The console in headless Chromium (Debian's chromium, playwright-core from npm, both installed
## by the script): the all-in-one, then the separate services on tansu + RabbitMQ; screenshots
## in target/console-test/ (see scripts/console-test.sh).
console-test:
	bash scripts/console-test.sh

lint: k8s-check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## deploy/kubernetes/ validated offline against the Kubernetes schemas (kubernetes-validate).
k8s-check:
	bash scripts/k8s-check.sh

## RustSec advisories, offline: needs cargo-audit and a copy of the advisory database
## (github.com/rustsec/advisory-db) at ../shared/advisory-db, beside the clone.
audit:
	cargo audit --db ../shared/advisory-db --no-fetch --stale --deny warnings

bench:
	bash scripts/bench.sh

## switchboard against the tokio peer, side by side: both sides and the ratios. Needs the peer's
## sources beside the clone, at ../shared/peers/tokio-chain (or PEER_SRC=DIR).
versus:
	bash scripts/versus.sh

## kill -9 relay, processor and worker while verified requests and jobs flow (real brokers).
kill-test:
	bash scripts/kill-test.sh

## 3 gateways, 2 relays, 2 processors, 2 workers on tansu + RabbitMQ under verified load;
## kill -9 one of each in turn; per-instance shares and a verdict (scripts/scale-test.sh).
scale-test:
	bash scripts/scale-test.sh

## 5 minutes of verified load on the embedded all-in-one, printing resident memory
## (SOAK_SEPARATE=1 or KAFKA_BROKERS set: gateway, relay, processor as separate processes on tansu).
soak:
	bash scripts/soak.sh

## One build per binary: each links only the adapters its wiring features ask for (a single
## workspace-wide build would unify the features, and the relay would link amiquip).
dist:
	@for p in switchboard switchboard-gateway switchboard-relay switchboard-processor switchboard-worker switchboard-console; do \
		$(CARGO) build --release -p $$p --bins || exit 1; done
	@ls -1 target/release/ | grep -E '^(switchboard|gateway|relay|processor|worker|console)$$' | sed 's|^|target/release/|'

brokers:
	bash scripts/brokers.sh start

brokers-stop:
	bash scripts/brokers.sh stop

fmt:
	$(CARGO) fmt --all
