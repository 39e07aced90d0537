use std::time::Duration;

use crate::drive::{Mode, PhaseReport};
use crate::embedded::{ratio, EmbeddedReport};

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_nanos() as f64 / 1000.0)
}

fn header() -> String {
    format!(
        "{:<32} {:>10} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "phase", "req/s", "p50 µs", "p90 µs", "p99 µs", "max µs", "errors"
    )
}

fn row(r: &PhaseReport) -> String {
    format!(
        "{:<32} {:>10.0} {:>9} {:>9} {:>9} {:>10} {:>7}",
        r.name,
        r.throughput,
        us(r.latency.p50),
        us(r.latency.p90),
        us(r.latency.p99),
        us(r.latency.max),
        r.error_count()
    )
}

fn error_lines(r: &PhaseReport) -> Vec<String> {
    r.errors.iter().map(|(kind, n)| format!("  {}: {n} × {kind}", r.name)).collect()
}

/// Prints one phase (the `loadgen` report).
pub fn print_phase(r: &PhaseReport) {
    let mode = match r.mode {
        Mode::Closed { concurrency } => format!("closed loop, {concurrency} connections"),
        Mode::Open { rate, connections } => {
            format!("open loop at {rate:.0}/s, {connections} connections")
        }
    };
    println!("{mode}; {} ok, {} failed", r.ok, r.error_count());
    println!("{}", header());
    println!("{}", row(r));
    if let Some(lag) = r.send_lag_p99 {
        println!("generator send lag p99: {} µs (latency counts from the scheduled send time)", us(lag));
    }
    for line in error_lines(r) {
        println!("{line}");
    }
}

/// Prints the embedded run: chain phases, floors, and the chain against the sum of floors.
pub fn print_embedded(r: &EmbeddedReport) {
    let phases = r.phases();
    println!(
        "message {} chars (request envelope {} bytes); per phase {:?} warm-up + {:?} recorded",
        r.config.message_size, r.envelope_bytes, r.config.warmup, r.config.duration
    );
    println!("{}", header());
    for (i, p) in phases.iter().enumerate() {
        if i == 3 {
            println!("floors, each hop alone:");
        }
        println!("{}", row(p));
    }
    if let Some(lag) = r.chain_rate.send_lag_p99 {
        println!("open loop: generator send lag p99 {} µs", us(lag));
    }
    let p50 = r.floor_sum(|p| p.latency.p50);
    let p99 = r.floor_sum(|p| p.latency.p99);
    println!();
    println!("one chain transaction = 2 broker hops + 1 gRPC call + 1 HTTP round trip");
    let line = |label: &str, r: &PhaseReport| {
        format!(
            "  {label:<30} p50 {:>8} µs   p99 {:>8} µs   → p50 {:.2}× the floors, {:.0} req/s",
            us(r.latency.p50),
            us(r.latency.p99),
            ratio(r.latency.p50, p50),
            r.throughput
        )
    };
    println!("  {:<30} p50 {:>8} µs   p99 {:>8} µs", "sum of floors (1 in flight):", us(p50), us(p99));
    println!("{}", line("chain, 1 in flight:", &r.chain_single));
    println!("{}", line(&format!("chain, {} in flight:", r.config.concurrency), &r.chain_loaded));
    println!("{}", line("chain, open loop:", &r.chain_rate));
    let cap = [&r.broker_loaded, &r.grpc_loaded, &r.http_loaded]
        .iter()
        .map(|p| (p.name.as_str(), p.throughput))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((name, tput)) = cap {
        println!("  {:<30} {name} at {tput:.0} req/s", "slowest hop alone under load:");
    }
    for p in phases {
        for line in error_lines(p) {
            println!("{line}");
        }
        if let Some(e) = &p.first_error {
            println!("  {}: first failure: {e}", p.name);
        }
    }
}
