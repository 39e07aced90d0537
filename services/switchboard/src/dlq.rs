//! `switchboard dlq`: list, show, redrive and purge dead letters on Kafka and RabbitMQ.

use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use switchboard_dead_letters::{
    capped, parse_time, DeadLetters, Entry, Filter, Listing, Report, Run, Settings, Source, SourceKind, TOOL_GROUP,
};
use switchboard_ports::{dead_letter_queue, unix_millis};
use switchboard_topology::{JOBS_QUEUE, REQUESTS_DLQ_TOPIC};
use switchboard_wiring::BrokerArgs;

/// Dead letters you can act on: list them, see why, send them back where they came from, or
/// remove them.
///
/// A redrive removes a dead letter only after the broker confirmed its copy at the origin
/// (RabbitMQ: acked; Kafka: the offset of the tool's own consumer group committed past it), so
/// a redrive killed at any point loses nothing and repeats at most the one in flight. Each copy
/// counts one more redrive; one past --max-redrives is refused and stays.
#[derive(Debug, clap::Args)]
pub struct DlqCli {
    #[command(subcommand)]
    command: DlqCommand,
    /// Print JSON (one document) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The requests' dead-letter topic (Kafka).
    #[arg(long = "requests-dlq-topic", env = "SWITCHBOARD_REQUESTS_DLQ", default_value = REQUESTS_DLQ_TOPIC)]
    requests_dlq: String,
    /// The jobs queue (RabbitMQ); its dead letters are in `<queue>.dlq`.
    #[arg(long, env = "SWITCHBOARD_JOBS_QUEUE", default_value = JOBS_QUEUE)]
    jobs_queue: String,
    /// A dead letter already redriven this many times is refused and stays.
    #[arg(long, env = "SWITCHBOARD_DLQ_MAX_REDRIVES", default_value_t = 3)]
    max_redrives: u32,
    /// Allow redriving requests: their callers are gone, so it only re-runs their side effects.
    #[arg(long, env = "SWITCHBOARD_DLQ_ALLOW_REQUESTS")]
    allow_requests: bool,
    /// Most dead letters read per queue by one command (rerun for more).
    #[arg(long, env = "SWITCHBOARD_DLQ_SCAN_LIMIT", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    scan_limit: u64,
    /// Kafka consumer group whose committed offsets mark the dead letters already redriven or
    /// purged (no service uses it).
    #[arg(long, env = "SWITCHBOARD_DLQ_GROUP", default_value = TOOL_GROUP)]
    group: String,
    #[command(flatten)]
    brokers: BrokerArgs,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// Dead letters, newest first: reason, origin, age (reads only).
    List {
        #[command(flatten)]
        select: Select,
        /// Counts per reason instead of the dead letters.
        #[arg(long)]
        by_reason: bool,
        /// Most dead letters printed.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One dead letter: headers and the decoded envelope or job (reads only).
    Show {
        /// Its id as `list` prints it (`requests:<partition>:<offset>`, `jobs:<job id>`).
        id: String,
        /// Most payload bytes printed.
        #[arg(long, default_value_t = 4096)]
        max_bytes: usize,
    },
    /// Republish dead letters to their origin, then remove them from the dead-letter queue.
    Redrive {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        change: Change,
    },
    /// Remove dead letters for good.
    Purge {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        change: Change,
        /// Confirms the purge (without it nothing is removed).
        #[arg(long)]
        yes: bool,
    },
}

/// Which dead letters.
#[derive(Debug, clap::Args)]
struct Select {
    /// requests, jobs or all.
    #[arg(long, default_value = "all")]
    source: String,
    /// Only those whose reason contains this text.
    #[arg(long)]
    reason: Option<String>,
    /// Only those dead-lettered since: a duration ago (10m, 2h), an RFC 3339 time or Unix ms.
    #[arg(long, value_parser = parse_time)]
    since: Option<u64>,
    /// Only those dead-lettered before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    until: Option<u64>,
    /// Only this one (repeatable).
    #[arg(long = "id")]
    ids: Vec<String>,
}

/// How a redrive or purge runs.
#[derive(Debug, clap::Args)]
struct Change {
    /// At most this many.
    #[arg(long)]
    max: Option<usize>,
    /// At most this many per second (0: no limit).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Print what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
}

impl Select {
    fn source(&self) -> anyhow::Result<Option<SourceKind>> {
        Ok(SourceKind::parse_selection(&self.source)?)
    }

    fn filter(&self) -> Filter {
        Filter {
            reason: self.reason.clone(),
            since_unix_ms: self.since,
            until_unix_ms: self.until,
            ids: self.ids.clone(),
        }
    }
}

impl Change {
    fn run(&self, select: &Select) -> anyhow::Result<Run> {
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            bail!("--rate must be a number of operations per second, 0 for no limit");
        }
        Ok(Run {
            source: select.source()?,
            filter: select.filter(),
            max: self.max,
            rate: Some(self.rate),
            dry_run: self.dry_run,
        })
    }
}

/// Who runs the command, for the log of every redrive and purge.
fn actor() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    format!("cli user {user}")
}

impl DlqCli {
    async fn dead_letters(&self) -> anyhow::Result<DeadLetters> {
        let mut sources = Vec::new();
        // Its own group (--group), not necessarily the default the wired ports use.
        if let Some(browse) = self.brokers.kafka_dead_letters(&self.group) {
            sources.push(Source { kind: SourceKind::Requests, dlq: self.requests_dlq.clone(), browse: browse? });
        }
        if let Some(queue) = self.brokers.amqp_work_queue().await {
            sources.push(Source {
                kind: SourceKind::Jobs,
                dlq: dead_letter_queue(&self.jobs_queue),
                browse: Arc::new(queue?),
            });
        }
        if sources.is_empty() {
            bail!(
                "no broker configured: set KAFKA_BROKERS (requests) and/or AMQP_URL (jobs). The embedded \
                 brokers live inside a running `switchboard run`; reach its dead letters through the console"
            );
        }
        let settings = Settings {
            max_redrives: self.max_redrives,
            allow_requests: self.allow_requests,
            scan_limit: self.scan_limit as usize,
        };
        Ok(DeadLetters::new(sources, settings))
    }

    /// Runs the command; the outcome on stdout, logs on stderr.
    pub async fn run(self) -> anyhow::Result<()> {
        let ops = self.dead_letters().await?;
        match &self.command {
            DlqCommand::List { select, by_reason, limit } => {
                let listing = ops.list(select.source()?, &select.filter()).await?;
                print_listing(&listing, *by_reason, *limit, self.json);
            }
            DlqCommand::Show { id, max_bytes } => {
                let entry = ops.show(id).await?.with_context(|| format!("no dead letter {id}"))?;
                print_entry(&entry, *max_bytes, self.json);
            }
            DlqCommand::Redrive { select, change } => {
                let report = ops.redrive(&change.run(select)?, &actor()).await?;
                print_report("redriven", &report, self.json);
                if let Some(e) = report.error {
                    bail!("redrive stopped: {e}");
                }
            }
            DlqCommand::Purge { select, change, yes } => {
                if !yes && !change.dry_run {
                    bail!("purge removes dead letters for good: add --yes (or try --dry-run first)");
                }
                let report = ops.purge(&change.run(select)?, &actor()).await?;
                print_report("purged", &report, self.json);
                if let Some(e) = report.error {
                    bail!("purge stopped: {e}");
                }
            }
        }
        Ok(())
    }
}

fn print_listing(listing: &Listing, by_reason: bool, limit: usize, json: bool) {
    if json {
        let mut doc = listing.to_json(limit);
        if by_reason {
            doc = json!({"by_reason": doc["by_reason"].take()});
        }
        println!("{doc}");
        return;
    }
    if by_reason {
        println!("{:>7}  {:<9} REASON", "COUNT", "SOURCE");
        for (source, reason, count) in &listing.by_reason {
            println!("{count:>7}  {:<9} {}", source.name(), one_line(reason, 200));
        }
        return;
    }
    let now = unix_millis();
    println!("{:<44} {:>8} {:>3} {:<36} REASON", "ID", "AGE", "RD", "ORIGIN");
    for e in listing.entries.iter().take(limit) {
        println!(
            "{:<44} {:>8} {:>3} {:<36} {}",
            e.id,
            age(e.age_s(now)),
            e.redrives,
            e.origin_shown,
            one_line(&e.reason, 120)
        );
    }
    if listing.entries.len() > limit {
        println!("… {} more (--limit)", listing.entries.len() - limit);
    }
}

fn print_entry(e: &Entry, max_bytes: usize, json: bool) {
    let doc = e.detail_json(unix_millis(), max_bytes);
    if json {
        println!("{doc}");
        return;
    }
    println!("id:        {}", e.id);
    println!("reason:    {}", e.reason);
    println!("origin:    {}", e.origin_shown);
    println!("attempts:  {}  redrives: {}  size: {} bytes", e.attempts, e.redrives, e.message.payload.len());
    println!("headers:");
    for (n, v) in &e.message.headers {
        println!("  {n}: {}", capped(v, 512));
    }
    println!("decoded:   {}", serde_json::to_string_pretty(&doc["decoded"]).unwrap_or_default());
    let cut = if e.message.payload.len() > max_bytes { " (truncated)" } else { "" };
    println!("payload{cut}: {}", doc["payload"].as_str().unwrap_or_default());
}

fn print_report(done: &str, r: &Report, json: bool) {
    if json {
        let mut doc = json!({"refused": r.refused, "details": r.details, "error": r.error});
        doc[done] = Value::from(r.done);
        println!("{doc}");
        return;
    }
    for d in &r.details {
        let to = d["to"].as_str().map(|t| format!(" -> {t}")).unwrap_or_default();
        let why = d["why"].as_str().map(|w| format!(": {w}")).unwrap_or_default();
        println!("{:<14} {}{to}{why}", d["outcome"].as_str().unwrap_or_default(), d["id"].as_str().unwrap_or_default());
    }
    println!("{done}: {}, refused: {}", r.done, r.refused);
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    capped(flat.as_bytes(), max)
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
