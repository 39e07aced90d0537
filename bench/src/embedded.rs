//! One run on this machine: the all-in-one chain on the embedded broker, closed loop and at a
//! fixed rate, then each hop's floor alone, for a side-by-side table.

use std::sync::Arc;
use std::time::Duration;

use switchboard::{Chain, ChainConfig};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_ports::{Publisher, Subscriber};
use switchboard_proto::convert::Stage;
use switchboard_proto::Envelope;

use crate::drive::{run_phase, Call, Mode, Phase, PhaseReport};
use crate::floors::{broker_floor, grpc_floor, http_floor};
use crate::http_load::HttpTarget;
use crate::Error;

/// What to run.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Workers of the loaded phases (closed loop) and connections of the open-loop phase.
    pub concurrency: usize,
    /// Rate of the open-loop phase; `None`: half the closed-loop throughput.
    pub rate: Option<f64>,
    /// Unrecorded warm-up per phase.
    pub warmup: Duration,
    /// Recorded time per phase.
    pub duration: Duration,
    /// Characters in each request's `message`.
    pub message_size: usize,
}

/// Everything one embedded run measured. `*_single`: one request in flight (latency without
/// queueing); `*_loaded`: `concurrency` in flight (throughput).
#[derive(Debug, Clone)]
pub struct EmbeddedReport {
    /// The settings used.
    pub config: EmbeddedConfig,
    /// Chain, closed loop, 1 in flight.
    pub chain_single: PhaseReport,
    /// Chain, closed loop, `concurrency` in flight.
    pub chain_loaded: PhaseReport,
    /// Chain, open loop at a fixed rate.
    pub chain_rate: PhaseReport,
    /// Produce → consume on the broker the chain used.
    pub broker_single: PhaseReport,
    /// Same, `concurrency` in flight.
    pub broker_loaded: PhaseReport,
    /// Unary call to the processor service (replies discarded).
    pub grpc_single: PhaseReport,
    /// Same, `concurrency` in flight on one channel.
    pub grpc_loaded: PhaseReport,
    /// `GET /healthz` on the chain's gateway.
    pub http_single: PhaseReport,
    /// Same, `concurrency` connections.
    pub http_loaded: PhaseReport,
    /// Bytes of the request envelope on the broker (the broker floor's payload).
    pub envelope_bytes: usize,
}

impl EmbeddedReport {
    /// Every phase, in the order they ran.
    pub fn phases(&self) -> [&PhaseReport; 9] {
        [
            &self.chain_single,
            &self.chain_loaded,
            &self.chain_rate,
            &self.broker_single,
            &self.broker_loaded,
            &self.grpc_single,
            &self.grpc_loaded,
            &self.http_single,
            &self.http_loaded,
        ]
    }
}

impl EmbeddedReport {
    /// Sum of the floors of one chain transaction at the quantile picked by `q`:
    /// 2 broker hops + 1 gRPC call + 1 HTTP round trip, each measured alone with 1 in flight.
    pub fn floor_sum(&self, q: impl Fn(&PhaseReport) -> Duration) -> Duration {
        q(&self.broker_single) * 2 + q(&self.grpc_single) + q(&self.http_single)
    }

    /// Chain p50 (1 in flight) over the p50 sum of floors: what the layers add beyond the
    /// transports.
    pub fn single_ratio(&self) -> f64 {
        ratio(self.chain_single.latency.p50, self.floor_sum(|r| r.latency.p50))
    }
}

pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        f64::NAN
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

/// Runs every phase in order; prints a line per phase to stderr as it goes (a run takes
/// 9 × (warm-up + duration)).
pub async fn run_embedded(config: EmbeddedConfig) -> Result<EmbeddedReport, Error> {
    let broker = MemoryBroker::new();
    let publisher: Arc<dyn Publisher> = Arc::new(broker.clone());
    let subscriber: Arc<dyn Subscriber> = Arc::new(broker.clone());
    let mut chain_config = ChainConfig::default();
    chain_config.gateway.addr = "127.0.0.1:0".parse().expect("literal address");
    chain_config.processor.addr = "127.0.0.1:0".parse().expect("literal address");
    let chain = Chain::start(chain_config, publisher.clone(), subscriber.clone())
        .await
        .map_err(|e| Error::Setup(format!("chain: {e:#}")))?;
    let gateway = chain.gateway_addr();
    let target = HttpTarget::post_messages(&format!("http://{gateway}/messages"), config.message_size)?;

    // A chain that cannot answer once would only produce a table of errors.
    let mut probe = target.worker();
    probe.call().await.map_err(|kind| Error::Setup(format!("the chain does not answer: {kind}")))?;

    let n = config.concurrency.max(1);
    let phase = |name: &str, mode: Mode| Phase {
        name: name.to_string(),
        mode,
        warmup: config.warmup,
        duration: config.duration,
    };
    let single = Mode::Closed { concurrency: 1 };
    let loaded = Mode::Closed { concurrency: n };
    let progress = |r: &PhaseReport| eprintln!("  done: {:<28} {:>9.0} req/s", r.name, r.throughput);

    let chain_single = run_phase(&phase("chain, 1 in flight", single), |_| target.worker()).await;
    progress(&chain_single);
    let chain_loaded = run_phase(&phase(&format!("chain, {n} in flight"), loaded), |_| target.worker()).await;
    progress(&chain_loaded);
    let rate = config.rate.unwrap_or_else(|| (chain_loaded.throughput / 2.0).round().max(1.0));
    let open = Mode::Open { rate, connections: n };
    let chain_rate = run_phase(&phase(&format!("chain, {rate:.0}/s open loop"), open), |_| target.worker()).await;
    progress(&chain_rate);

    let http_single = http_floor(gateway, "/healthz", &phase("HTTP GET /healthz, 1", single)).await?;
    progress(&http_single);
    let http_loaded = http_floor(gateway, "/healthz", &phase(&format!("HTTP GET /healthz, {n}"), loaded)).await?;
    progress(&http_loaded);
    chain.stop().await;

    let envelope_bytes = request_envelope_bytes(config.message_size);
    let prefix = format!("bench.floor.{}", std::process::id());
    let broker_single = broker_floor(
        publisher.clone(),
        subscriber.clone(),
        &format!("{prefix}.single"),
        envelope_bytes,
        &phase("broker round trip, 1", single),
    )
    .await?;
    progress(&broker_single);
    let broker_loaded = broker_floor(
        publisher,
        subscriber,
        &format!("{prefix}.loaded"),
        envelope_bytes,
        &phase(&format!("broker round trip, {n}"), loaded),
    )
    .await?;
    progress(&broker_loaded);
    let grpc_single = grpc_floor(config.message_size, &phase("gRPC unary, 1", single)).await?;
    progress(&grpc_single);
    let grpc_loaded = grpc_floor(config.message_size, &phase(&format!("gRPC unary, {n}"), loaded)).await?;
    progress(&grpc_loaded);

    Ok(EmbeddedReport {
        config,
        chain_single,
        chain_loaded,
        chain_rate,
        broker_single,
        broker_loaded,
        grpc_single,
        grpc_loaded,
        http_single,
        http_loaded,
        envelope_bytes,
    })
}

/// Size of the request envelope as the gateway publishes it (two hops recorded).
fn request_envelope_bytes(message_size: usize) -> usize {
    let text: String = "benchmark message ".chars().cycle().take(message_size.max(1)).collect();
    let mut e = Envelope::start(uuid_like(), text, "switchboard.replies", Duration::from_secs(5));
    e.record(Stage::RestRequest, "gateway");
    e.record(Stage::KafkaPublisher, "gateway");
    e.encode().len()
}

fn uuid_like() -> String {
    "00000000-0000-4000-8000-000000000000".to_string()
}
