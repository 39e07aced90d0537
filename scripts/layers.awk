# The layers of the chain, from `perf report --no-children --sort dso,sym` lines reduced to
# "<percent>\t<dso>\t<symbol>" (scripts/cost.sh with COST_PROFILE=1): each sample's own symbol,
# sorted into a layer by its name. Prints each layer's share and its top `top` symbols; with
# `-v per_tx=µs` (the run's CPU per transaction) also each layer's µs per transaction. The tokio
# peer's crates (scripts/versus.sh) sort into the same layers: tonic, h2 and hyper's HTTP/2 as
# gRPC, axum and hyper as HTTP, tokio as the executor, prost as protobuf. gawk.
    function layer(dso, s) {
        if (dso ~ /kernel/) return "kernel (syscalls, scheduling, loopback TCP)"
        if (s ~ /grpc|absl|gpr_|upb_|tsi_|alts|re2::|cq_|chttp2|hpack|grpcio|stream_op|^timer_|^tcp_|_frame_parser|connected_channel|^now_impl|^std::__cxx11|tonic|(^|[^a-z0-9])h2::|hyper::proto::h2/) return "gRPC (grpc-core C++ and grpcio; tonic, h2)"
        if (s ~ /clock_gettime|SystemTime|Instant/) return "clocks"
        if (s ~ /^(mi_|_mi_|mi_malloc|mi_free)|mimalloc|malloc|free|realloc|calloc|operator (new|delete)|__rust_(alloc|dealloc|realloc)|memcpy|memmove|memset/) return "allocation and copies (mimalloc, memcpy)"
        if (s ~ /protobuf|prost|Envelope|switchboard_proto/) return "protobuf and envelopes"
        if (s ~ /env_logger|log::|tracing_appender|fmt::|core::fmt|humantime|Formatter/) return "formatting and the log"
        if (s ~ /async_h1|tide|http_types|route_recognizer|url::|httparse|hyper|axum|http::/) return "HTTP (async-h1, tide; axum, hyper)"
        if (s ~ /serde_json|serde::/) return "JSON (serde_json)"
        if (s ~ /async_executor|async_task|async_io|polling|concurrent_queue|async_channel|event_listener|futures_lite|async_lock|parking|smol|waker|Waker|async_std|tokio/) return "executor, reactor, channels"
        if (s ~ /switchboard_embedded|MemoryBroker/) return "embedded broker"
        if (s ~ /prometheus|switchboard_telemetry/) return "metrics and telemetry"
        if (s ~ /switchboard/) return "switchboard services (gateway, relay, processor)"
        if (dso ~ /libc/) return "libc (other)"
        return "other"
    }
    { l = layer($2, $3); total[l] += $1; all += $1; n = ++count[l]; if (n <= top) sym[l, n] = sprintf("%.1f%% %s", $1, substr($3, 1, 90)) }
    END {
        PROCINFO["sorted_in"] = "@val_num_desc"
        if (per_tx == "") {
            printf "\n| layer | share of samples |\n|---|---:|\n"
            for (l in total) printf "| %s | %.1f %% |\n", l, total[l] * 100 / all
        } else {
            printf "\n| layer | share of samples | µs CPU per transaction |\n|---|---:|---:|\n"
            for (l in total) printf "| %s | %.1f %% | %.1f |\n", l, total[l] * 100 / all, total[l] * per_tx / all
        }
        printf "\ntop symbols per layer (self time):\n"
        for (l in total) { printf "  %s\n", l; for (i = 1; i <= top && (l, i) in sym; i++) printf "    %s\n", sym[l, i] }
    }
