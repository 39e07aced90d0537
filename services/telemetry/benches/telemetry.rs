//! Cost of the per-request helpers on the hot path: `cargo bench -p switchboard-telemetry`.
//!
//! A plain timing loop (no criterion, to keep the build small); prints ns per call, single
//! thread and 2 threads sharing one `Metrics`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use switchboard_telemetry::{Metrics, TraceContext};

const ITERS: u32 = 1_000_000;

fn time(name: &str, threads: u32, f: impl Fn() + Send + Sync) {
    let f = &f;
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || {
                for _ in 0..ITERS {
                    f();
                }
            });
        }
    });
    let per_call = started.elapsed().as_nanos() as f64 / f64::from(ITERS);
    println!("{name:<40} {threads} thread(s) {per_call:>8.1} ns/call (wall per thread)");
}

fn main() {
    let metrics = Metrics::builder("bench").routes(["/messages", "/jobs"]).build();
    for threads in [1, 2] {
        time("http_request (known route)", threads, || {
            metrics.http_request(black_box("/messages"), "POST", 202, Duration::from_micros(300))
        });
        time("published", threads, || metrics.published(black_box("requests"), true));
        time("hop", threads, || metrics.hop("grpc_call", Duration::from_micros(120)));
    }
    let header = TraceContext::new().to_string();
    time("TraceContext::parse", 1, || {
        black_box(TraceContext::parse(black_box(header.as_str())).ok());
    });
    time("TraceContext::child + to_string", 1, || {
        black_box(TraceContext::new().child().to_string());
    });
    for topic in 0..32 {
        metrics.consumed(&format!("topic-{topic}"));
    }
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..1000 {
        bytes = black_box(metrics.encode()).len();
    }
    println!("encode ({bytes} bytes)                    {:>8.1} µs/call", started.elapsed().as_secs_f64() * 1e3);
}
