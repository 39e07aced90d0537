//! The dead-letter operations over the brokers a process is wired with: what `switchboard dlq`
//! and the console (for the all-in-one, on its embedded brokers too) act through.

use switchboard_dead_letters::{DeadLetters, Settings, Source, SourceKind};
use switchboard_ports::dead_letter_queue;
use switchboard_wiring::{PubSub, Queues};

/// Operations on the requests' dead-letter topic `requests_dlq` (when `ports` can browse) and
/// on the dead-letter queue of `jobs_queue` (when `queues` are given).
pub fn dead_letters(
    ports: Option<&PubSub>,
    queues: Option<&Queues>,
    requests_dlq: &str,
    jobs_queue: &str,
    settings: Settings,
) -> DeadLetters {
    let mut sources = Vec::new();
    if let Some(browse) = ports.and_then(|p| p.dead_letters.clone()) {
        sources.push(Source { kind: SourceKind::Requests, dlq: requests_dlq.to_owned(), browse });
    }
    if let Some(q) = queues {
        sources.push(Source {
            kind: SourceKind::Jobs,
            dlq: dead_letter_queue(jobs_queue),
            browse: q.dead_letters.clone(),
        });
    }
    DeadLetters::new(sources, settings)
}
