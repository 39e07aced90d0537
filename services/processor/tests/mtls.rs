//! The processor with mutual TLS: only clients with a certificate from the configured CA get
//! through; every other client (plaintext, no certificate, a certificate from another CA, a
//! client that does not trust the server's CA) fails with UNAVAILABLE, and the server goes on
//! serving the good client.

use std::sync::Arc;
use std::time::Duration;

use grpcio::{CallOption, RpcStatusCode};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_grpc::client::ProcessorClientBuilder;
use switchboard_grpc::tls::{ClientTls, ServerTls};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::{Envelope, ProcessRequest, ProcessorClient};
use switchboard_testkit::certs::test_certs;
use switchboard_topology::topics::ReplyTopics;

fn start(mutual: bool) -> ProcessorServer {
    let certs = test_certs();
    let tls =
        ServerTls::from_pem(certs.read("server.pem"), certs.read("server.key"), mutual.then(|| certs.read("ca.pem")));
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        reply_topics: ReplyTopics::only("replies"),
        tls: Some(tls),
        ..ServerConfig::default()
    };
    ProcessorServer::start(&config, Arc::new(MemoryBroker::new())).unwrap()
}

fn client(server: &ProcessorServer, ca: &str, identity: Option<(&str, &str)>) -> ProcessorClient {
    let certs = test_certs();
    let tls = ClientTls::from_pem(certs.read(ca), identity.map(|(c, k)| (certs.read(c), certs.read(k))), None);
    ProcessorClientBuilder::new(server.local_addr().to_string()).tls(tls).connect()
}

/// One call (an envelope without reply topic: answered over gRPC only), bounded.
async fn call(client: &ProcessorClient) -> Result<String, RpcStatusCode> {
    let mut r = ProcessRequest::new();
    r.envelope = Some(Envelope::start("id", "x", "", Duration::from_secs(5))).into();
    let opt = CallOption::default().timeout(Duration::from_secs(20));
    match client.process_async_opt(&r, opt).unwrap().await {
        Ok(resp) => Ok(resp.envelope.unwrap().body),
        Err(grpcio::Error::RpcFailure(s)) => Err(s.code()),
        Err(e) => panic!("not a status: {e:?}"),
    }
}

#[test]
fn mutual_tls_admits_the_right_client_and_refuses_every_other_one() {
    smol::block_on(async {
        let server = start(true);
        let good = client(&server, "ca.pem", Some(("client.pem", "client.key")));
        assert_eq!(call(&good).await, Ok("x and gRPC server".to_owned()));

        let plaintext = ProcessorClientBuilder::new(server.local_addr().to_string()).connect();
        assert_eq!(call(&plaintext).await, Err(RpcStatusCode::UNAVAILABLE), "plaintext client");
        let anonymous = client(&server, "ca.pem", None);
        assert_eq!(call(&anonymous).await, Err(RpcStatusCode::UNAVAILABLE), "no client certificate");
        let foreign = client(&server, "ca.pem", Some(("wrong-client.pem", "wrong-client.key")));
        assert_eq!(call(&foreign).await, Err(RpcStatusCode::UNAVAILABLE), "certificate from another CA");
        let distrustful = client(&server, "wrong-ca.pem", Some(("client.pem", "client.key")));
        assert_eq!(call(&distrustful).await, Err(RpcStatusCode::UNAVAILABLE), "server not trusted");

        // The refusals did not hurt the server.
        assert_eq!(call(&good).await, Ok("x and gRPC server".to_owned()));
        server.shutdown().await;
    });
}

#[test]
fn server_only_tls_serves_clients_without_a_certificate() {
    smol::block_on(async {
        let server = start(false);
        let anonymous = client(&server, "ca.pem", None);
        assert_eq!(call(&anonymous).await, Ok("x and gRPC server".to_owned()));
        let plaintext = ProcessorClientBuilder::new(server.local_addr().to_string()).connect();
        assert_eq!(call(&plaintext).await, Err(RpcStatusCode::UNAVAILABLE), "plaintext client");
        server.shutdown().await;
    });
}
