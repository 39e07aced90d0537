//! The relay's calls to the processor: the envelopes ready at the same moment carried together
//! in one `ProcessBatch` call, at most `batch_max` of them (1: one envelope a call).
//!
//! Every call goes through the collecting task, and every call is a `ProcessBatch`, a lone
//! envelope being a batch of one: the processor handles each envelope of a batch exactly as
//! `Process` handles one (the same checks, publish and status), and takes the trace context from
//! each envelope's own `trace`, so one RPC serves every case. A processor without
//! `ProcessBatch` answers UNIMPLEMENTED, a processor failure like any other: processors are
//! upgraded before relays.
//!
//! Batching earned its place: at 32 in flight it took the chain from 98 to 68 µs of CPU per
//! transaction (−31 %) and doubled req/s; a lone request skipping the batcher saved 5 % of p50
//! at 1 in flight, not worth a second path (BENCHMARKS.md, "Changes tried").
//!
//! Batching never waits for company: the collecting task takes the first envelope as soon as
//! it is queued, adds only those already queued behind it, and starts the call. Calls run on
//! their own tasks, so several batches are in flight at once and the collector is back to
//! collecting while they are.

use std::cmp::Reverse;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures_lite::future;
use grpcio::{CallOption, RpcStatus, RpcStatusCode};
use log::error;
use switchboard_proto::{Envelope, ProcessBatchRequest, ProcessResponse, ProcessorClient};

pub(crate) use switchboard_proto::methods::PROCESS_BATCH;

/// What one envelope's call came to: the envelope handed back (for a failure answer or a dead
/// letter), the result `Process` would give for it, and how many envelopes the call carried.
#[derive(Debug)]
pub(crate) struct Answer {
    pub envelope: Envelope,
    pub result: Result<ProcessResponse, grpcio::Error>,
    pub batch_len: usize,
}

/// How the relay reaches the processor: through the collecting task (see the module docs).
#[derive(Clone)]
pub(crate) struct Calls {
    items: async_channel::Sender<Item>,
}

/// One envelope waiting for its call.
pub(crate) struct Item {
    envelope: Envelope,
    deadline: Instant,
    reply: oneshot::Sender<Answer>,
}

impl Calls {
    /// A collecting task (on smol's executor, ending once every `Calls` clone is dropped)
    /// making batches of up to `max_batch` envelopes (1 to [`MAX_BATCH`]), with room for `queue`
    /// waiting envelopes (the relay's requests in flight).
    ///
    /// [`MAX_BATCH`]: switchboard_proto::MAX_BATCH
    pub(crate) fn new(client: ProcessorClient, max_batch: usize, queue: usize) -> Self {
        let max_batch = max_batch.clamp(1, switchboard_proto::MAX_BATCH);
        let (items, queued) = async_channel::bounded(queue.max(1));
        smol::spawn(collect(client, queued, max_batch)).detach();
        Calls { items }
    }

    /// Calls the processor for `envelope` within `remaining`. `None` only if the collecting
    /// task is gone (it never ends while the relay runs): the envelope was not answered and its
    /// delivery should come back.
    pub(crate) async fn call(&self, envelope: Envelope, remaining: Duration) -> Option<Answer> {
        let (reply, answer) = oneshot::channel();
        let item = Item { envelope, deadline: Instant::now() + remaining, reply };
        if self.items.send(item).await.is_err() {
            error!("processor batching task stopped: request left for redelivery");
            return None;
        }
        answer.await.ok()
    }
}

/// Takes the first waiting envelope, adds those already queued (no linger), starts the call
/// on its own task, and goes back for more.
async fn collect(client: ProcessorClient, queued: async_channel::Receiver<Item>, max_batch: usize) {
    while let Ok(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queued.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        smol::spawn(call_batch(client.clone(), batch)).detach();
    }
}

/// One `ProcessBatch` call for `items`, each answered with its own result.
async fn call_batch(client: ProcessorClient, items: Vec<Item>) {
    let now = Instant::now();
    // The call lasts as long as the latest deadline among its envelopes.
    let Some(latest) = items.iter().map(|i| i.deadline).max() else { return };
    let batch_len = items.len();
    let mut batch = ProcessBatchRequest::new();
    // The relay only needs each outcome, not the published envelope back.
    batch.omit_envelopes = true;
    batch.envelopes = Vec::with_capacity(batch_len);
    let mut replies = Vec::with_capacity(batch_len);
    for Item { envelope, deadline, reply } in items {
        batch.envelopes.push(envelope);
        replies.push((deadline, reply));
    }
    let timeout = latest.saturating_duration_since(now);
    let started = client.process_batch_async_opt(&batch, CallOption::default().timeout(timeout));
    // The call has serialized the batch: each envelope goes back to its own waiter.
    let mut waiters: Vec<Option<Waiter>> = replies
        .into_iter()
        .zip(batch.envelopes.drain(..))
        .map(|((deadline, reply), envelope)| Some(Waiter { envelope, deadline, reply, batch_len }))
        .collect();
    let result = match started {
        Ok(receiver) => until_answered(receiver, &mut waiters, latest).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(resp) if resp.results.len() == batch_len => {
            for (w, r) in waiters.iter_mut().zip(resp.results) {
                if let Some(w) = w.take() {
                    w.answer(r.into_response());
                }
            }
        }
        Ok(resp) => {
            // Which result is whose cannot be known: each envelope is failed (and retried).
            let why = format!("processor answered {} results for {batch_len} envelopes", resp.results.len());
            fail_all(&mut waiters, RpcStatus::with_message(RpcStatusCode::INTERNAL, why));
        }
        // The whole call failed: that is each envelope's failure, as its own call's would be.
        Err(grpcio::Error::RpcFailure(status)) => fail_all(&mut waiters, status),
        Err(e) => fail_all(&mut waiters, RpcStatus::with_message(RpcStatusCode::UNAVAILABLE, e.to_string())),
    }
}

/// The batch call's result, answering meanwhile each waiter whose own deadline passes first
/// with DEADLINE_EXCEEDED, as a call of its own would have timed out.
///
/// The processor's per-envelope expiry check is not enough on its own: it covers envelopes
/// that expired before the batch arrived, but one that expires while the batch is being
/// handled (a slow publish) would hear only at the call's timeout, the latest deadline of the
/// batch. So one timer per batch, not per envelope, armed at the earliest deadline still
/// waiting, re-armed only when it fires; none when every deadline is the call's.
async fn until_answered<T>(
    receiver: impl std::future::Future<Output = Result<T, grpcio::Error>>,
    waiters: &mut [Option<Waiter>],
    latest: Instant,
) -> Result<T, grpcio::Error> {
    let mut call = pin!(receiver);
    // Latest first, so the earliest is popped from the end.
    let mut order: Vec<usize> = (0..waiters.len()).collect();
    order.sort_by_key(|&i| Reverse(waiters[i].as_ref().map(|w| w.deadline)));
    loop {
        let next = order.last().and_then(|&i| waiters[i].as_ref()).map(|w| w.deadline).filter(|d| *d < latest);
        let Some(next) = next else { return call.await };
        let fired = async {
            async_io::Timer::at(next).await;
            None
        };
        if let Some(result) = future::or(async { Some((&mut call).await) }, fired).await {
            return result;
        }
        let now = Instant::now();
        while let Some(&i) = order.last() {
            match &waiters[i] {
                Some(w) if w.deadline > now => break,
                _ => {
                    order.pop();
                    if let Some(w) = waiters[i].take() {
                        w.answer(Err(grpcio::Error::RpcFailure(RpcStatus::new(RpcStatusCode::DEADLINE_EXCEEDED))));
                    }
                }
            }
        }
    }
}

/// An envelope of a batch in flight, waiting to be handed back with its result.
struct Waiter {
    envelope: Envelope,
    deadline: Instant,
    reply: oneshot::Sender<Answer>,
    batch_len: usize,
}

impl Waiter {
    fn answer(self, result: Result<ProcessResponse, grpcio::Error>) {
        // A waiter that is gone (its task dropped at shutdown) needs no answer.
        let _ = self.reply.send(Answer { envelope: self.envelope, result, batch_len: self.batch_len });
    }
}

fn fail_all(waiters: &mut [Option<Waiter>], status: RpcStatus) {
    for w in waiters.iter_mut().filter_map(Option::take) {
        w.answer(Err(grpcio::Error::RpcFailure(status.clone())));
    }
}

#[cfg(test)]
mod tests;
