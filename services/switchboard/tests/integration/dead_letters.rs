//! Dead letters on the embedded brokers: origin headers, list/show, dry runs, redrive by
//! reason, the redrive limit, purge; and the HTTP operations the console mounts.

use std::sync::Arc;

use crate::dead_letters_support::*;
use serde_json::json;
use switchboard_dead_letters::{HttpApi, Settings, TOOL_GROUP};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::{Message, Publisher};
use switchboard_wiring::{PubSub, Queues};

fn rig() -> Rig {
    let broker = MemoryBroker::new();
    let queue = MemoryWorkQueue::new();
    Rig {
        ports: PubSub::embedded(broker.clone()),
        queues: Queues::embedded(queue.clone()),
        topics: Arc::new(broker.browser(TOOL_GROUP)),
        queue_browse: Arc::new(queue),
        requests_topic: "switchboard.requests".into(),
        replies_topic: "switchboard.replies".into(),
        requests_dlq: "switchboard.requests.dlq".into(),
        jobs_queue: "switchboard.jobs".into(),
        relay_group: "switchboard-relay".into(),
    }
}

scenario_tests! { [] rig();
    a_failed_job_is_redriven_once_fixed_and_ends_done => failed_job_is_redriven_once_fixed;
    a_job_failing_again_stops_at_max_redrives => redrive_stops_at_max_redrives;
    a_poison_request_is_listed_shown_and_purged => poison_request_list_show_purge;
    a_poison_request_redriven_stops_at_max_redrives => poison_request_redrive_stops_at_max_redrives;
}

#[test]
fn http_operations_refuse_changes_without_authentication_and_answer_the_contract_shapes() {
    smol::block_on(async {
        let rig = rig();
        let chain = rig.start().await;
        let publisher = rig.ports.publisher.clone();
        publisher.publish(&rig.requests_topic, Message::new(&b"\x01bad"[..])).await.unwrap();
        let ops = rig.dead_letters(Settings { allow_requests: true, ..Settings::default() });
        wait_listed(&ops, switchboard_dead_letters::SourceKind::Requests, 1).await;
        let api = HttpApi::new(ops.clone(), false);

        let (status, list) = api.handle("GET", "/api/dead-letters?source=all&limit=10", b"", None).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["by_reason"][0]["source"], "requests", "{list}");
        assert_eq!(list["by_reason"][0]["count"], 1, "{list}");
        let item = &list["items"][0];
        for field in [
            "id",
            "source",
            "reason",
            "origin",
            "first_failed_unix_ms",
            "attempts",
            "redrives",
            "age_s",
            "size",
            "preview",
            "headers",
        ] {
            assert!(!item[field].is_null(), "{field} missing: {item}");
        }
        let id = item["id"].as_str().unwrap().to_owned();
        let (status, one) = api.handle("GET", &format!("/api/dead-letters/{id}"), b"", None).await;
        assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())), "{one}");
        let (status, _) = api.handle("GET", "/api/dead-letters/requests:9:999999", b"", None).await;
        assert_eq!(status, 404);

        let body = serde_json::to_vec(&json!({"source": "requests", "ids": [id]})).unwrap();
        let (status, refused) = api.handle("POST", "/api/dead-letters/redrive", &body, None).await;
        assert_eq!((status, &refused["error"]["code"]), (403, &json!("forbidden")), "{refused}");
        let (status, bad) = api.handle("POST", "/api/dead-letters/redrive", b"{nope", Some("token:ab12")).await;
        assert_eq!((status, &bad["error"]["code"]), (400, &json!("invalid_json")), "{bad}");
        let (status, bad) = api.handle("POST", "/api/dead-letters/redrive", b"{\"source\":\"jobs\"}", Some("t")).await;
        assert_eq!((status, &bad["error"]["code"]), (400, &json!("missing_selection")), "{bad}");
        let (status, bad) = api.handle("GET", "/api/dead-letters?source=nope", b"", None).await;
        assert_eq!((status, &bad["error"]["code"]), (400, &json!("invalid_source")), "{bad}");
        let (status, _) = api.handle("DELETE", "/api/dead-letters", b"", None).await;
        assert_eq!(status, 405);

        let dry = serde_json::to_vec(&json!({"source": "requests", "ids": [id], "dry_run": true})).unwrap();
        let (status, report) = api.handle("POST", "/api/dead-letters/redrive", &dry, Some("token:ab12")).await;
        assert_eq!(
            (status, report["redriven"].as_u64(), report["refused"].as_u64()),
            (200, Some(1), Some(0)),
            "{report}"
        );

        let purge = serde_json::to_vec(&json!({"source": "requests", "ids": [id]})).unwrap();
        let (status, bad) = api.handle("POST", "/api/dead-letters/purge", &purge, Some("token:ab12")).await;
        assert_eq!((status, &bad["error"]["code"]), (400, &json!("confirmation_required")), "{bad}");
        let allowed = HttpApi::new(ops.clone(), true);
        let purge = serde_json::to_vec(&json!({"source": "requests", "ids": [id], "confirm": true})).unwrap();
        let (status, report) = allowed.handle("POST", "/api/dead-letters/purge", &purge, None).await;
        assert_eq!((status, report["purged"].as_u64()), (200, Some(1)), "{report}");
        let (_, list) = api.handle("GET", "/api/dead-letters", b"", None).await;
        assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
        chain.stop().await;
    });
}

#[test]
fn dlq_help_lists_every_command_and_setting_and_no_broker_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).args(["dlq", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "list",
        "show",
        "redrive",
        "purge",
        "--json",
        "--max-redrives",
        "--allow-requests",
        "--kafka-brokers",
        "KAFKA_BROKERS",
        "--amqp-url",
        "AMQP_URL",
        "--requests-dlq-topic",
        "--jobs-queue",
        "--group",
    ] {
        assert!(help.contains(word), "`{word}` missing from dlq --help:\n{help}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["dlq", "redrive", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["--reason", "--since", "--until", "--id", "--max", "--rate", "--dry-run", "--source"] {
        assert!(help.contains(word), "`{word}` missing from dlq redrive --help:\n{help}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["dlq", "list", "--by-reason", "--json"])
        .env_remove("KAFKA_BROKERS")
        .env_remove("AMQP_URL")
        .env_remove("AMQP_URL_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no broker configured"), "{out:?}");
}
