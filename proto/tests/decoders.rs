//! Every decoder fed bytes from outside (the broker, the work queue, the job-events fanout):
//! arbitrary input gives a value or an error, never a panic, and what was encoded comes back.

use proptest::prelude::*;
use protobuf::Enum;
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope, Job, JobEvent, ProtoMessage};

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        ".{0,40}",
        ".{0,200}",
        ".{0,40}",
        any::<i64>(),
        proptest::collection::vec(0usize..7, 0..8),
        proptest::option::of((0i32..5, ".{0,40}")),
    )
        .prop_map(|(id, body, reply_to, deadline, stages, failed)| {
            let mut e = Envelope::new();
            e.id = id;
            e.body = body;
            e.reply_to = reply_to;
            e.deadline_unix_ms = deadline;
            let all = [
                Stage::RestRequest,
                Stage::KafkaPublisher,
                Stage::KafkaConsumer,
                Stage::GrpcClient,
                Stage::GrpcServer,
                Stage::RabbitmqPublisher,
                Stage::RabbitmqConsumer,
            ];
            for s in stages {
                e.record(all[s], "svc");
            }
            if let Some((code, why)) = failed {
                let code = failure::Code::from_i32(code).unwrap_or(failure::Code::INTERNAL);
                e.fail(code, why, None);
            }
            e
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn envelope_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(e) = Envelope::decode(&bytes) {
            // Whatever decoded can be inspected and re-encoded.
            let _ = (e.is_reply(), e.expired(), e.remaining(), e.traceparent());
            prop_assert!(Envelope::decode(&e.encode()).is_ok());
        }
    }

    #[test]
    fn job_and_job_event_decode_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(job) = Job::parse_from_bytes(&bytes) {
            prop_assert!(Job::parse_from_bytes(&job.write_to_bytes().unwrap()).is_ok());
        }
        if let Ok(event) = JobEvent::parse_from_bytes(&bytes) {
            let _ = event.status.enum_value();
            prop_assert!(JobEvent::parse_from_bytes(&event.write_to_bytes().unwrap()).is_ok());
        }
    }

    #[test]
    fn envelopes_survive_the_wire_and_stay_replies_or_requests(e in envelope()) {
        let back = Envelope::decode(&e.encode()).unwrap();
        prop_assert_eq!(back.is_reply(), e.is_reply());
        prop_assert_eq!(back, e);
    }

    #[test]
    fn truncated_or_corrupted_envelopes_never_panic(e in envelope(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let mut bytes = e.encode();
        if !bytes.is_empty() {
            let i = cut.index(bytes.len());
            bytes[i] ^= flip;
            let _ = Envelope::decode(&bytes);
            bytes.truncate(i);
            let _ = Envelope::decode(&bytes);
        }
    }
}
