#!/usr/bin/env python3
"""An OTLP/HTTP endpoint that reads each POST and answers 200 with an empty (valid)
ExportTraceServiceResponse, decoding nothing: it stands in for a collector on another host when
`scripts/cost.sh` measures what trace export costs the chain on a machine with few cores, where a
real receiver's own CPU would slow the load generator and the chain alike.

    otlp_sink.py HOST:PORT
"""

import http.server
import sys

MAX_BODY = 16 * 1024 * 1024


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the exporter reuses its connection

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        if length > MAX_BODY:
            self.send_error(413)
            return
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    host, port = sys.argv[1].rsplit(":", 1)
    http.server.ThreadingHTTPServer((host, int(port)), Sink).serve_forever()
