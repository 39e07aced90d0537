//! `bench`: the all-in-one chain on the embedded broker driven closed loop and at a fixed rate,
//! next to the floor of each hop alone (broker round trip, gRPC unary call, HTTP round trip).
//! `--kafka-floor BROKERS` instead measures only the broker floor on a real Kafka-compatible
//! broker, through the adapter and settings the services use.

#![forbid(unsafe_code)]

use clap::Parser;
use switchboard_bench::{
    kafka_floor, print_embedded, print_phase, run_embedded, EmbeddedConfig, LoadArgs, Mode, Phase,
};
use switchboard_kafka::KafkaConfig;

#[derive(Debug, Parser)]
#[command(version, about = "Embedded chain benchmark with per-hop floors")]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
    /// Log as the deployed services do (info level, to stderr): shows what logging costs.
    #[arg(long)]
    log: bool,
    /// Only the produce → consume floor on this Kafka broker (e.g. 127.0.0.1:9092): 1 in
    /// flight, then `--concurrency` in flight, each worker on its own fresh topic.
    #[arg(long)]
    kafka_floor: Option<String>,
    /// librdkafka property for the Kafka floor, `key=value` (repeatable), applied over the
    /// adapter's defaults: for trying a setting before changing `KafkaConfig`.
    #[arg(long = "kafka-set", value_name = "KEY=VALUE")]
    kafka_set: Vec<String>,
    /// Payload bytes of the Kafka floor (233 = the chain's request envelope for 64 characters).
    #[arg(long, default_value_t = 233)]
    payload: usize,
}

fn main() {
    let code = run();
    // Log lines still queued in the writer thread (`--log`) before the process ends.
    switchboard_telemetry::flush_logs();
    std::process::exit(code);
}

fn run() -> i32 {
    let cli = Cli::parse();
    if cli.log {
        switchboard_telemetry::init_logging("bench");
    }
    if let Some(brokers) = &cli.kafka_floor {
        if let Err(e) = smol::block_on(kafka(brokers, &cli)) {
            eprintln!("bench: {e}");
            return 1;
        }
        return 0;
    }
    let config = EmbeddedConfig {
        concurrency: cli.load.concurrency.max(1),
        rate: cli.load.rate,
        warmup: cli.load.warmup,
        duration: cli.load.duration,
        message_size: cli.load.message_size,
    };
    eprintln!("bench: 9 phases of {:?} + {:?} each", config.warmup, config.duration);
    match smol::block_on(run_embedded(config)) {
        Ok(report) => {
            print_embedded(&report);
            0
        }
        Err(e) => {
            eprintln!("bench: {e}");
            1
        }
    }
}

async fn kafka(brokers: &str, cli: &Cli) -> Result<(), switchboard_bench::Error> {
    let mut config = KafkaConfig::new(brokers);
    for kv in &cli.kafka_set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| switchboard_bench::Error::Setup(format!("--kafka-set {kv}: expected key=value")))?;
        config = config.set(k, v);
    }
    println!(
        "kafka floor on {brokers}: {} B payload, linger {:?}, fetch.wait.max {:?}, poll interval {:?}, overrides {:?}",
        cli.payload, config.linger, config.fetch_wait_max, config.poll_interval, config.overrides
    );
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let prefix = format!("bench.floor.{}.{stamp}", std::process::id());
    for (name, n) in [("1", 1), ("n", cli.load.concurrency.max(1))] {
        let phase = Phase {
            name: format!("kafka round trip, {n} in flight"),
            mode: Mode::Closed { concurrency: n },
            warmup: cli.load.warmup,
            duration: cli.load.duration,
        };
        let report = kafka_floor(&config, &format!("{prefix}.{name}"), cli.payload, &phase).await?;
        print_phase(&report);
    }
    Ok(())
}
