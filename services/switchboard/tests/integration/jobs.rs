//! The jobs API end to end on the embedded brokers (`MemoryBroker` for the chain,
//! `MemoryWorkQueue` for jobs): the real gateway, worker and processor (real gRPC), over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::edges_support::{gateway_on_memory, Served};
use crate::hello::JOB_RESULT;
use http_types::{Method, Request, Url};
use serde_json::json;
use switchboard::{Chain, ChainConfig, ChainJobs, HttpClient, HttpReply};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_gateway::{GatewayConfig, JobsConfig};
use switchboard_ports::QueueOptions;
use switchboard_wiring::Queues;

fn config(queues: Queues) -> ChainConfig {
    let mut c = ChainConfig::default();
    c.gateway.addr = "127.0.0.1:0".parse().unwrap();
    c.processor.addr = "127.0.0.1:0".parse().unwrap();
    c.jobs = Some(ChainJobs::new(queues));
    c
}

async fn start(queues: Queues) -> Chain {
    let broker = MemoryBroker::new();
    Chain::start(config(queues), Arc::new(broker.clone()), Arc::new(broker)).await.expect("chain starts")
}

/// `POST /jobs` with the raw response, to see its headers.
async fn post_job_raw(addr: SocketAddr, body: serde_json::Value) -> http_types::Response {
    let mut req = Request::new(Method::Post, Url::parse(&format!("http://{addr}/jobs")).unwrap());
    req.insert_header("Content-Type", "application/json");
    req.set_body(serde_json::to_vec(&body).unwrap());
    let stream = async_std::net::TcpStream::connect(addr).await.unwrap();
    async_h1::connect(stream, req).await.expect("gateway answers")
}

/// Polls `GET /jobs/{id}` until the job is final (done or failed); fails after 20 s.
async fn wait_final(client: &mut HttpClient, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = client.get(&format!("/jobs/{id}")).await.expect("gateway answers");
        // Another gateway learns of a job through the fanout: until its first event arrives
        // it answers 404.
        if reply.status == 404 && Instant::now() < deadline {
            async_io::Timer::after(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        if body["status"] == "done" || body["status"] == "failed" {
            return body;
        }
        assert!(Instant::now() < deadline, "job {id} still {} after 20 s", body["status"]);
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
}

#[test]
fn post_job_then_get_done_with_the_upper_cased_result() {
    smol::block_on(async {
        let chain = start(Queues::embedded(MemoryWorkQueue::new())).await;
        let mut res = post_job_raw(chain.gateway_addr(), json!({"message": "hello world"})).await;
        assert_eq!(u16::from(res.status()), 202);
        let body: serde_json::Value = serde_json::from_str(&res.body_string().await.unwrap()).unwrap();
        let id = body["id"].as_str().expect("an id").to_string();
        assert_eq!(body["status"], "queued");
        assert_eq!(res.header("Location").map(|v| v.as_str().to_string()), Some(format!("/jobs/{id}")));

        let mut client = HttpClient::new(chain.gateway_addr());
        let job = wait_final(&mut client, &id).await;
        assert_eq!(job["status"], "done", "{job}");
        assert_eq!(job["id"], id.as_str());
        assert_eq!(job["result"], JOB_RESULT);
        assert_eq!(job["error"], serde_json::Value::Null);
        assert_eq!(job["attempt"], 1);
        chain.stop().await;
    });
}

#[test]
fn bad_input_on_jobs_is_a_json_4xx() {
    smol::block_on(async {
        let chain = start(Queues::embedded(MemoryWorkQueue::new())).await;
        let cases: [(Option<&str>, &[u8], u16, &str); 4] = [
            (Some("text/plain"), b"hello", 415, "unsupported_media_type"),
            (Some("application/json"), b"{not json", 400, "invalid_json"),
            (Some("application/json"), b"{}", 400, "missing_message"),
            (Some("application/json"), br#"{"message": "  "}"#, 400, "empty_message"),
        ];
        for (ct, body, status, code) in cases {
            // One connection per case: an unread body (415) must not decide the next case.
            let mut client = HttpClient::new(chain.gateway_addr());
            let reply: HttpReply = client.send(Method::Post, "/jobs", ct, body.to_vec()).await.expect(code);
            assert_eq!(reply.status, status, "{}", reply.body);
            assert_eq!(reply.json()["error"]["code"], code, "{}", reply.body);
        }
        let too_big = serde_json::to_vec(&json!({"message": "x".repeat(70_000)})).unwrap();
        let mut client = HttpClient::new(chain.gateway_addr());
        let reply = client.send(Method::Post, "/jobs", Some("application/json"), too_big).await.unwrap();
        assert_eq!(reply.status, 413, "{}", reply.body);
        chain.stop().await;
    });
}

#[test]
fn unknown_job_is_a_json_404() {
    smol::block_on(async {
        let chain = start(Queues::embedded(MemoryWorkQueue::new())).await;
        let mut client = HttpClient::new(chain.gateway_addr());
        let reply = client.get("/jobs/no-such-job").await.unwrap();
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json()["error"]["code"], "not_found", "{}", reply.body);
        chain.stop().await;
    });
}

/// Two all-in-ones on one work queue: a job posted to one gateway is visible as done on the
/// other, whichever worker ran it.
#[test]
fn job_results_are_visible_from_any_gateway() {
    smol::block_on(async {
        let queues = Queues::embedded(MemoryWorkQueue::new());
        let a = start(queues.clone()).await;
        let b = start(queues).await;
        let (mut ca, mut cb) = (HttpClient::new(a.gateway_addr()), HttpClient::new(b.gateway_addr()));
        let mut ids = Vec::new();
        for i in 0..6 {
            let via = if i % 2 == 0 { &mut ca } else { &mut cb };
            let reply = via.post_json("/jobs", &json!({"message": format!("job {i}")})).await.unwrap();
            assert_eq!(reply.status, 202, "{}", reply.body);
            ids.push(reply.json()["id"].as_str().unwrap().to_string());
        }
        for (i, id) in ids.iter().enumerate() {
            // Asked of the gateway that did not accept it.
            let other = if i % 2 == 0 { &mut cb } else { &mut ca };
            let job = wait_final(other, id).await;
            assert_eq!(job["status"], "done", "{job}");
            assert!(job["result"].as_str().unwrap().starts_with(&format!("JOB {i} FROM REST AND RABBITMQ")), "{job}");
        }
        a.stop().await;
        b.stop().await;
    });
}

/// A full queue (no worker draining it) answers 503 with Retry-After, and the job is not
/// accepted.
#[test]
fn full_queue_is_503_with_retry_after() {
    smol::block_on(async {
        let queue = MemoryWorkQueue::new();
        let config = GatewayConfig { addr: "127.0.0.1:0".parse().unwrap(), ..GatewayConfig::default() };
        let jobs = JobsConfig::default().with_queue_options(QueueOptions::default().with_max_length(1));
        let gateway =
            gateway_on_memory(config).await.with_jobs(jobs, Arc::new(queue.clone()), Arc::new(queue)).await.unwrap();
        let served = Served::start(gateway);
        let mut client = HttpClient::new(served.addr);
        let first = client.post_json("/jobs", &json!({"message": "fits"})).await.unwrap();
        assert_eq!(first.status, 202, "{}", first.body);
        let second = client.post_json("/jobs", &json!({"message": "does not fit"})).await.unwrap();
        assert_eq!(second.status, 503, "{}", second.body);
        assert_eq!(second.json()["error"]["code"], "unavailable");
        assert_eq!(second.retry_after.as_deref(), Some("1"));
        let queued = client.get(&format!("/jobs/{}", first.json()["id"].as_str().unwrap())).await.unwrap();
        assert_eq!(queued.json()["status"], "queued");
        served.stop().await;
    });
}
