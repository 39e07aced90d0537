//! Shared by the relay's tests on the embedded broker: the real processor on loopback gRPC and a
//! request handler calling it, each test bounded so that a loop fails it instead of hanging it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_grpc::ProcessorClientBuilder;
use switchboard_ports::Publisher;
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::ProcessorClient;
use switchboard_relay::{RelayConfig, RequestHandler};
use switchboard_resilience::CircuitBreaker;

/// Runs `test`, within 60 s, with a client of a processor (default settings: replies to
/// `switchboard.replies` only) that publishes its replies through `replies`; then shuts the
/// processor down.
pub fn with_processor<T: Future<Output = ()>>(replies: Arc<dyn Publisher>, test: impl FnOnce(ProcessorClient) -> T) {
    let config = ServerConfig { addr: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() };
    let processor = ProcessorServer::start(&config, replies).unwrap();
    switchboard_testkit::block_on_within(Duration::from_secs(60), async {
        test(ProcessorClientBuilder::new(processor.local_addr().to_string()).connect()).await;
        processor.shutdown().await;
    });
}

/// `with_processor`, with `test` given a handler of `config` that calls that processor and
/// publishes (answers, dead letters) through `publisher`.
pub fn with_handler<T: Future<Output = ()>>(
    replies: Arc<dyn Publisher>,
    config: RelayConfig,
    publisher: Arc<dyn Publisher>,
    test: impl FnOnce(RequestHandler) -> T,
) {
    with_processor(replies, |client| {
        let breaker = CircuitBreaker::new(config.breaker.clone());
        test(RequestHandler::new(Arc::new(config), client, publisher, breaker))
    });
}
