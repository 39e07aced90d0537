use std::net::SocketAddr;

use crate::ServerConfig;

/// Processor flags, each with an environment fallback.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessorArgs {
    /// gRPC listen address.
    #[arg(long, env = "PROCESSOR_ADDR", default_value = switchboard_topology::PROCESSOR_ADDR)]
    pub processor_addr: SocketAddr,
    /// grpcio completion-queue threads.
    #[arg(long, env = "SWITCHBOARD_PROCESSOR_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub processor_threads: u64,
}

impl ProcessorArgs {
    /// The server configuration these flags describe.
    pub fn config(&self) -> ServerConfig {
        ServerConfig { addr: self.processor_addr, threads: self.processor_threads as usize, ..ServerConfig::default() }
    }
}
