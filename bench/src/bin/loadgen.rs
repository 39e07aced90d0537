//! `loadgen`: drives any switchboard gateway over HTTP, closed loop (`--concurrency`) or at a
//! fixed rate (`--rate`), and prints throughput, latency percentiles and errors by status.
//!
//! `--verify` sends `--requests` requests, each with a unique token, and checks every reply is
//! the chain's answer for that token; `--jobs N` submits N jobs to `POST /jobs` and polls each
//! until it finishes. Both together run at once (the kill test). A run that lost a request or a
//! job, or delivered a reply to the wrong caller, exits non-zero.

#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use switchboard_bench::{
    parse_duration, print_phase, run_jobs, run_phase, run_verify, HttpTarget, JobsConfig, JobsReport, LoadArgs, Mode,
    Phase, VerifyConfig, VerifyReport,
};

#[derive(Debug, Parser)]
#[command(version, about = "HTTP load generator for a switchboard gateway")]
struct Cli {
    /// Gateway URL; a URL without a path posts to /messages.
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080/messages")]
    target: String,
    /// Send `GET` without a body instead of `POST /messages` (e.g. `--target …/healthz --get`).
    #[arg(long)]
    get: bool,
    /// Verify every reply: `--requests` requests at `--rate` (default 300/s), each with a unique
    /// token; counts ok / failed by status / lost / cross-delivered / duplicated.
    #[arg(long)]
    verify: bool,
    /// Requests of a `--verify` run.
    #[arg(long, env = "LOADGEN_REQUESTS", default_value_t = 10_000)]
    requests: u64,
    /// The gateway's request budget (its SWITCHBOARD_REQUEST_TIMEOUT_MS).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    deadline: Duration,
    /// A request unanswered after deadline + margin counts as lost.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    margin: Duration,
    /// Also (or only, without --verify) submit this many jobs to POST /jobs and poll them.
    #[arg(long, env = "LOADGEN_JOBS", default_value_t = 0)]
    jobs: u64,
    /// Job submissions per second.
    #[arg(long, default_value_t = 50.0)]
    jobs_rate: f64,
    /// Jobs URL; default: /jobs on the target's host.
    #[arg(long, env = "JOBS_URL")]
    jobs_target: Option<String>,
    /// How long jobs may take to finish after the last submission before they count as lost.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    jobs_settle: Duration,
    /// Prefix of the summary lines (e.g. `kill-test`).
    #[arg(long, default_value = "loadgen")]
    label: String,
    /// Print running counts to stderr this often in verify/jobs runs (0: never).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    progress: Duration,
    #[command(flatten)]
    load: LoadArgs,
}

fn main() {
    let cli = Cli::parse();
    let result = if cli.verify || cli.jobs > 0 { verify(cli) } else { load(cli) };
    if let Err(e) = result {
        eprintln!("loadgen: {e:#}");
        std::process::exit(1);
    }
}

fn load(cli: Cli) -> anyhow::Result<()> {
    let target = if cli.get {
        HttpTarget::get(&cli.target)?
    } else {
        HttpTarget::post_messages(&cli.target, cli.load.message_size)?
    };
    let mode = match cli.load.rate {
        Some(rate) if rate > 0.0 => Mode::Open { rate, connections: cli.load.concurrency.max(1) },
        Some(rate) => anyhow::bail!("--rate must be positive, got {rate}"),
        None => Mode::Closed { concurrency: cli.load.concurrency.max(1) },
    };
    let phase = Phase {
        name: format!("{} {}", target.method, target.path),
        mode,
        warmup: cli.load.warmup,
        duration: cli.load.duration,
    };
    println!("loadgen → http://{}{}", target.addr, target.path);
    let report = smol::block_on(run_phase(&phase, |_| target.worker()));
    print_phase(&report);
    if report.ok == 0 {
        let why = report.first_error.as_deref().unwrap_or("no request completed");
        return Err(anyhow::anyhow!("no successful request: {why}")).context("is the gateway up?");
    }
    Ok(())
}

fn verify(cli: Cli) -> anyhow::Result<()> {
    let target = HttpTarget::post_messages(&cli.target, cli.load.message_size)?;
    let jobs_target = match &cli.jobs_target {
        Some(url) => HttpTarget::get(url)?,
        None => HttpTarget { path: "/jobs".into(), ..target.clone() },
    };
    let progress = (!cli.progress.is_zero()).then_some(cli.progress);
    let rate = cli.load.rate.unwrap_or(300.0);
    anyhow::ensure!(rate > 0.0 && cli.jobs_rate > 0.0, "rates must be positive");
    let verify_config = VerifyConfig {
        requests: cli.requests,
        rate,
        connections: cli.load.concurrency.max(1),
        deadline: cli.deadline,
        margin: cli.margin,
        message_size: cli.load.message_size,
        progress,
    };
    let jobs_config = JobsConfig {
        jobs: cli.jobs,
        rate: cli.jobs_rate,
        connections: 16,
        poll_interval: Duration::from_millis(200),
        settle: cli.jobs_settle,
        call_timeout: cli.deadline + cli.margin,
        progress,
    };
    if cli.verify {
        println!(
            "{}: {} verified requests at {rate}/s on {} connections → http://{}{}",
            cli.label, cli.requests, verify_config.connections, target.addr, target.path
        );
    }
    if cli.jobs > 0 {
        println!(
            "{}: {} jobs at {}/s → http://{}{}",
            cli.label, cli.jobs, cli.jobs_rate, jobs_target.addr, jobs_target.path
        );
    }
    let (requests, jobs): (Option<VerifyReport>, Option<JobsReport>) = smol::block_on(async {
        let requests = async {
            if cli.verify {
                Some(run_verify(&target, &verify_config).await)
            } else {
                None
            }
        };
        let jobs = async {
            if cli.jobs > 0 {
                Some(run_jobs(jobs_target.addr, &jobs_target.path, &jobs_config).await)
            } else {
                None
            }
        };
        futures_lite::future::zip(requests, jobs).await
    });
    let mut failures = Vec::new();
    if let Some(r) = &requests {
        println!("{}: {}", cli.label, r.summary_line());
        let l = r.latency;
        println!(
            "{}: ok latency p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
            cli.label,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max)
        );
        let verdicts = [
            (!r.passed(), "requests lost, cross-delivered, duplicated or corrupted"),
            (r.ok == 0, "no request answered ok"),
        ];
        judge(&r.examples, verdicts, &mut failures);
    }
    if let Some(j) = &jobs {
        println!("{}: {}", cli.label, j.summary_line());
        if !j.lost_states.is_empty() {
            println!("{}: lost jobs by last state: {:?}", cli.label, j.lost_states);
        }
        if !j.rejected.is_empty() {
            println!("{}: rejected jobs by status: {:?}", cli.label, j.rejected);
        }
        let verdicts =
            [(!j.passed(), "jobs lost, duplicated or with a wrong result"), (j.completed == 0, "no job completed")];
        judge(&j.examples, verdicts, &mut failures);
    }
    if failures.is_empty() {
        println!("{}: loadgen checks passed", cli.label);
        Ok(())
    } else {
        println!("{}: loadgen checks FAILED ({})", cli.label, failures.join("; "));
        anyhow::bail!("{}", failures.join("; "))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints a run's example failures, then records the message of each verdict that holds.
fn judge(examples: &[String], verdicts: [(bool, &'static str); 2], failures: &mut Vec<&'static str>) {
    for e in examples {
        println!("  {e}");
    }
    failures.extend(verdicts.into_iter().filter(|(failed, _)| *failed).map(|(_, why)| why));
}
