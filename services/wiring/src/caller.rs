//! The flags of the processor's callers deployed alone, declared once for both.

use switchboard_grpc::tls::ProcessorClientArgs;
use switchboard_service::ServiceArgs;

use crate::BrokerArgs;

/// The flags of a service deployed alone that takes work from a broker and calls the processor
/// (the relay, the worker), in this order in `--help`: the names it shares with the other
/// services (`N`), its own settings (`A`), the processor's addresses and TLS, its admin server
/// and grace period, its brokers. The binary names itself with
/// `service_main!(…, about = "…")`.
#[derive(Debug, clap::Parser)]
#[command(long_about = None)]
pub struct CallerCli<N: clap::Args, A: clap::Args> {
    /// Topic or queue names.
    #[command(flatten)]
    pub names: N,
    /// The service's own settings.
    #[command(flatten)]
    pub args: A,
    /// Where and how to call the processor.
    #[command(flatten)]
    pub processor: ProcessorClientArgs,
    /// Admin address and grace period.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The brokers.
    #[command(flatten)]
    pub brokers: BrokerArgs,
}
