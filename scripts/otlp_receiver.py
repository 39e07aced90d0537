#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver built on the official `opentelemetry-proto` package, that checks
what the switchboard services export for one transaction.

It serves POST /v1/traces (protobuf ExportTraceServiceRequest) on 127.0.0.1:PORT until the spans
of TRACE_ID are all in (or the timeout passes), then checks them and exits 0 (every check
passed) or 1 (the failures are printed). Nothing from the services' own code is used to decode.

    otlp_receiver.py --port 4318 --trace-id 32hex --caller-span 16hex [--timeout 60]

Checks: every span of the trace has the traceparent's trace id; the gateway's root span's parent
is the caller's span; the spans form one connected parent chain through gateway, relay and
processor in hop order; service.name, span kinds, and the HTTP, messaging and RPC attributes.
"""

import argparse
import http.server
import sys
import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MAX_BODY = 4 * 1024 * 1024

# The transaction's hops in order: (service.name, switchboard.hop, span kind).
EXPECTED = [
    ("gateway", "REST request", Span.SPAN_KIND_SERVER),
    ("gateway", "KAFKA Publisher", Span.SPAN_KIND_PRODUCER),
    ("relay", "KAFKA Consumer", Span.SPAN_KIND_CONSUMER),
    ("relay", "gRPC Client", Span.SPAN_KIND_CLIENT),
    ("processor", "gRPC Server", Span.SPAN_KIND_SERVER),
    ("processor", "KAFKA Publisher", Span.SPAN_KIND_PRODUCER),
    ("gateway", "KAFKA Consumer", Span.SPAN_KIND_CONSUMER),
]

received = []  # (service.name, Span)
requests = {"count": 0, "bad": []}
lock = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attrs(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="application/x-protobuf"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        if length > MAX_BODY:
            self.answer(413, b"too large", "text/plain")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        problems = []
        if self.path != "/v1/traces":
            problems.append(f"POST to {self.path}, not /v1/traces")
        content_type = self.headers.get("Content-Type", "")
        if content_type != "application/x-protobuf":
            problems.append(f"Content-Type {content_type!r}, not application/x-protobuf")
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as e:  # noqa: BLE001 - any decode failure is the finding
            problems.append(f"undecodable ExportTraceServiceRequest: {e}")
        with lock:
            requests["count"] += 1
            requests["bad"].extend(problems)
            for rs in request.resource_spans:
                service = attrs(rs.resource.attributes).get("service.name", "")
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        received.append((service, span, attrs(rs.resource.attributes)))
        self.answer(200, ExportTraceServiceResponse().SerializeToString())


def check(trace_id, caller_span):
    failures = []

    def expect(ok, message):
        if not ok:
            failures.append(message)

    with lock:
        spans = [(svc, s, res) for svc, s, res in received if s.trace_id.hex() == trace_id]
        expect(not requests["bad"], f"malformed export requests: {requests['bad']}")
    expect(len(spans) == len(EXPECTED), f"{len(spans)} spans of trace {trace_id}, expected {len(EXPECTED)}")

    # The parent chain, from the caller's span through every hop.
    chain, parent = [], caller_span
    by_parent = {}
    for entry in spans:
        by_parent.setdefault(entry[1].parent_span_id.hex(), []).append(entry)
    while parent in by_parent and len(chain) < 20:
        children = by_parent[parent]
        expect(len(children) == 1, f"span {parent} has {len(children)} children, expected one")
        chain.append(children[0])
        parent = children[0][1].span_id.hex()
    expect(len(chain) == len(EXPECTED), f"the parent chain from the caller's span {caller_span} has "
           f"{len(chain)} spans, expected {len(EXPECTED)}: not connected")

    for (service, span, resource), (want_service, want_hop, want_kind) in zip(chain, EXPECTED):
        a = attrs(span.attributes)
        where = f"{want_hop} on {want_service}"
        expect(service == want_service, f"{where}: service.name {service!r}")
        expect(a.get("switchboard.hop") == want_hop, f"{where}: switchboard.hop {a.get('switchboard.hop')!r}")
        expect(span.kind == want_kind, f"{where}: kind {Span.SpanKind.Name(span.kind)}")
        expect(len(span.span_id) == 8 and len(span.trace_id) == 16, f"{where}: id lengths")
        expect(span.end_time_unix_nano >= span.start_time_unix_nano > 0, f"{where}: times")
        expect(span.status.code != Status.STATUS_CODE_ERROR, f"{where}: status ERROR {span.status.message!r}")
        expect(bool(a.get("switchboard.message_id")), f"{where}: no switchboard.message_id")
        expect(str(a.get("switchboard.log", "")).startswith(want_hop + ": hello world"),
               f"{where}: switchboard.log {a.get('switchboard.log')!r}")
        expect(bool(resource.get("service.instance.id")), f"{where}: no service.instance.id")
        expect(bool(resource.get("service.version")), f"{where}: no service.version")
        if want_kind in (Span.SPAN_KIND_PRODUCER, Span.SPAN_KIND_CONSUMER):
            expect(a.get("messaging.system") == "kafka", f"{where}: messaging.system {a.get('messaging.system')!r}")
            expect(bool(a.get("messaging.destination.name")), f"{where}: no messaging.destination.name")
            expect(a.get("messaging.operation.type") in ("publish", "receive", "process"),
                   f"{where}: messaging.operation.type {a.get('messaging.operation.type')!r}")
        if want_hop in ("gRPC Client", "gRPC Server"):
            expect(a.get("rpc.system") == "grpc", f"{where}: rpc.system {a.get('rpc.system')!r}")
            expect(a.get("rpc.service") == "switchboard.v1.Processor", f"{where}: rpc.service {a.get('rpc.service')!r}")
            expect(a.get("rpc.method") in ("Process", "ProcessBatch"), f"{where}: rpc.method {a.get('rpc.method')!r}")
            expect(a.get("rpc.grpc.status_code") == 0, f"{where}: rpc.grpc.status_code {a.get('rpc.grpc.status_code')!r}")
    if len(chain) == len(EXPECTED):
        root = attrs(chain[0][1].attributes)
        expect(root.get("http.request.method") == "POST", f"root: http.request.method {root.get('http.request.method')!r}")
        expect(root.get("http.route") == "/messages", f"root: http.route {root.get('http.route')!r}")
        expect(root.get("http.response.status_code") == 200, f"root: status {root.get('http.response.status_code')!r}")
        relay = attrs(chain[2][1].attributes)
        expect(bool(relay.get("messaging.consumer.group.name")), "relay consumer: no messaging.consumer.group.name")
        expect("messaging.kafka.offset" in relay, "relay consumer: no messaging.kafka.offset")
        root_span = chain[0][1]
        # Every hop starts within the root span (the relay's may end after it: the processor
        # publishes the reply before it answers the relay's call).
        expect(all(root_span.start_time_unix_nano <= s.start_time_unix_nano <= root_span.end_time_unix_nano
                   for _, s, _ in chain), "a hop starts outside the root span")
        expect(chain[6][1].end_time_unix_nano <= root_span.end_time_unix_nano,
               "the reply's receipt ends after the root span")
    return chain, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--trace-id", required=True)
    parser.add_argument("--caller-span", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"otlp_receiver: listening on 127.0.0.1:{args.port}", flush=True)

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        with lock:
            n = sum(1 for _, s, _ in received if s.trace_id.hex() == args.trace_id)
        if n >= len(EXPECTED):
            time.sleep(0.5)  # any span beyond the expected ones would show now
            break
        time.sleep(0.05)
    server.shutdown()

    chain, failures = check(args.trace_id, args.caller_span)
    for service, span, _ in chain:
        a = attrs(span.attributes)
        print(f"  {service:10} {Span.SpanKind.Name(span.kind):20} {span.name:40} "
              f"span={span.span_id.hex()} parent={span.parent_span_id.hex()} hop={a.get('switchboard.hop')!r}")
    with lock:
        print(f"otlp_receiver: {requests['count']} export requests, {len(received)} spans in all")
    if failures:
        for f in failures:
            print(f"otlp_receiver: FAILED: {f}", file=sys.stderr)
        sys.exit(1)
    print("otlp_receiver: trace ids, parent chain, service names, kinds and attributes as expected")


if __name__ == "__main__":
    main()
