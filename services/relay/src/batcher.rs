//! The relay's calls to the processor: one unary `Process` per envelope, or, with batching on,
//! the envelopes that are ready at the same moment carried together in one `ProcessBatch`.
//!
//! Batching never waits for company: the collecting task takes the first envelope as soon as
//! it is queued, adds only those already queued behind it, and starts the call; a lone
//! envelope goes out at once as a plain `Process` call (today's unary call, headers and all).
//! Calls run on their own tasks, so several batches are in flight at once and the collector is
//! back to collecting while they are.

use std::cmp::Reverse;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures_lite::future;
use grpcio::{CallOption, RpcStatus, RpcStatusCode};
use log::{error, warn};
use switchboard_proto::{ProcessBatchRequest, ProcessRequest, ProcessResponse, ProcessorClient};

pub(crate) use switchboard_proto::methods::{PROCESS, PROCESS_BATCH};

/// What one envelope's call came to: the request handed back (for a failure answer or a dead
/// letter), the result `Process` gives for it, and the RPC that carried it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub request: ProcessRequest,
    pub result: Result<ProcessResponse, grpcio::Error>,
    pub method: &'static str,
}

/// How the relay reaches the processor.
#[derive(Clone)]
pub(crate) enum Calls {
    /// One `Process` call per envelope, made by the request's own task.
    Unary(ProcessorClient),
    /// Through the collecting task (see the module docs).
    Batched(async_channel::Sender<Item>),
}

/// One envelope waiting for its call.
pub(crate) struct Item {
    request: ProcessRequest,
    deadline: Instant,
    reply: oneshot::Sender<Answer>,
}

impl Calls {
    /// Unary calls when `max_batch` is 1; otherwise a collecting task (on smol's executor,
    /// ending once every `Calls` clone is dropped) making batches of up to `max_batch`, with
    /// room for `queue` waiting envelopes (the relay's requests in flight).
    pub(crate) fn new(client: ProcessorClient, max_batch: usize, queue: usize) -> Self {
        if max_batch <= 1 {
            return Calls::Unary(client);
        }
        let max_batch = max_batch.min(switchboard_proto::MAX_BATCH);
        let (items, queued) = async_channel::bounded(queue.max(1));
        smol::spawn(collect(client, queued, max_batch)).detach();
        Calls::Batched(items)
    }

    /// Calls the processor for `request` within `remaining`. `None` only if the batching task
    /// is gone (it never ends while the relay runs): the request was not answered and its
    /// delivery should come back.
    pub(crate) async fn call(&self, request: ProcessRequest, remaining: Duration) -> Option<Answer> {
        match self {
            Calls::Unary(client) => Some(unary(client, request, remaining).await),
            Calls::Batched(items) => {
                let (reply, answer) = oneshot::channel();
                let item = Item { request, deadline: Instant::now() + remaining, reply };
                if items.send(item).await.is_err() {
                    error!("processor batching task stopped: request left for redelivery");
                    return None;
                }
                answer.await.ok()
            }
        }
    }
}

async fn unary(client: &ProcessorClient, mut request: ProcessRequest, remaining: Duration) -> Answer {
    // The relay only needs the outcome, not the published envelope back.
    request.omit_envelope = true;
    let mut opt = CallOption::default().timeout(remaining);
    if let Some(headers) = request.envelope.as_ref().and_then(switchboard_grpc::client::call_metadata) {
        opt = opt.headers(headers);
    }
    let result = match client.process_async_opt(&request, opt) {
        Ok(receiver) => receiver.await,
        Err(e) => Err(e),
    };
    Answer { request, result, method: PROCESS }
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

/// One call for `items`: a lone one as `Process`, several as `ProcessBatch`.
async fn call_batch(client: ProcessorClient, items: Vec<Item>) {
    let now = Instant::now();
    if items.len() == 1 {
        let Item { request, deadline, reply } = items.into_iter().next().expect("one item");
        let _ = reply.send(unary(&client, request, deadline.saturating_duration_since(now)).await);
        return;
    }
    // The call lasts as long as the latest deadline among its envelopes.
    let latest = items.iter().map(|i| i.deadline).max().expect("several items");
    let mut batch = ProcessBatchRequest::new();
    batch.omit_envelopes = true; // as in `unary`
    batch.envelopes = Vec::with_capacity(items.len());
    let mut waiters: Vec<Option<Waiter>> = Vec::with_capacity(items.len());
    for Item { mut request, deadline, reply } in items {
        batch.envelopes.push(request.envelope.take().unwrap_or_default());
        waiters.push(Some(Waiter { request, deadline, reply }));
    }
    let started = client.process_batch_async_opt(&batch, CallOption::default().timeout(latest - now));
    // The call has serialized the batch: each envelope goes back to its own request.
    for (w, envelope) in waiters.iter_mut().zip(batch.envelopes.drain(..)) {
        if let Some(w) = w {
            w.request.envelope = Some(envelope).into();
        }
    }
    let result = match started {
        Ok(receiver) => until_answered(receiver, &mut waiters, latest).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(resp) if resp.results.len() == waiters.len() => {
            for (w, r) in waiters.iter_mut().zip(resp.results) {
                if let Some(w) = w.take() {
                    w.answer(r.into_response());
                }
            }
        }
        Ok(resp) => {
            // Which result is whose cannot be known: each envelope is failed (and retried).
            let why = format!("processor answered {} results for {} envelopes", resp.results.len(), waiters.len());
            fail_all(&mut waiters, RpcStatus::with_message(RpcStatusCode::INTERNAL, why));
        }
        Err(grpcio::Error::RpcFailure(status)) if status.code() == RpcStatusCode::UNIMPLEMENTED => {
            // A processor older than `ProcessBatch` (during a rolling upgrade): one call each.
            warn!("processor does not implement ProcessBatch: calling Process for each envelope");
            for w in waiters.into_iter().flatten() {
                let client = client.clone();
                smol::spawn(async move {
                    let remaining = w.deadline.saturating_duration_since(Instant::now());
                    let _ = w.reply.send(unary(&client, w.request, remaining).await);
                })
                .detach();
            }
        }
        // The whole call failed: that is each envelope's failure, as its own call's would be.
        Err(grpcio::Error::RpcFailure(status)) => fail_all(&mut waiters, status),
        Err(e) => fail_all(&mut waiters, RpcStatus::with_message(RpcStatusCode::UNAVAILABLE, e.to_string())),
    }
}

/// The batch call's result, answering meanwhile each waiter whose own deadline passes first
/// with DEADLINE_EXCEEDED, as its own unary call's timeout would have.
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

/// An envelope of a batch in flight, its request waiting to be handed back.
struct Waiter {
    request: ProcessRequest,
    deadline: Instant,
    reply: oneshot::Sender<Answer>,
}

impl Waiter {
    fn answer(self, result: Result<ProcessResponse, grpcio::Error>) {
        // A waiter that is gone (its task dropped at shutdown) needs no answer.
        let _ = self.reply.send(Answer { request: self.request, result, method: PROCESS_BATCH });
    }
}

fn fail_all(waiters: &mut [Option<Waiter>], status: RpcStatus) {
    for w in waiters.iter_mut().filter_map(Option::take) {
        w.answer(Err(grpcio::Error::RpcFailure(status.clone())));
    }
}

#[cfg(test)]
mod tests;
