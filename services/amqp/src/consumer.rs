//! Consumer threads: each owns one channel with one consumer, hands deliveries out over a
//! bounded async channel and applies settles sent back over a crossbeam channel (the thread
//! waits on deliveries and settles at once). When the channel dies it asks the connection
//! thread for a new one and consumes again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use amiquip::{Channel, ConsumerMessage, ConsumerOptions, Delivery};
use crossbeam_channel::{select, Receiver, Sender};
use switchboard_ports::{Error, ErrorKind, Job, Message};

use crate::connection::{broker_error, oneshot, Command, Reply};
use crate::queue::AmqpSettle;
use crate::{headers, topology};

/// What to do with a delivery.
pub(crate) enum Settle {
    Ack,
    Requeue,
}

/// Messages to a consumer thread.
pub(crate) enum Control {
    /// Settle the job tagged `tag` (see [`job_tag`]); jobs of an earlier channel fail: the
    /// broker already requeued them when that channel died.
    Settle { tag: u64, how: Settle, reply: Option<Reply<Result<(), Error>>> },
    /// Cancel, close the channel (unsettled jobs go back), then answer.
    Stop { reply: Option<Reply<()>> },
}

/// What a consumer thread consumes and how it hands messages out.
pub(crate) enum Mode {
    /// Jobs of `queue`, settled by the user.
    Jobs {
        queue: Arc<str>,
        prefetch: u16,
        out: async_channel::Sender<Job>,
        buffered: async_channel::Receiver<Job>,
        settle: Arc<AmqpSettle>,
    },
    /// Events of a fanout exchange, acked once buffered; the oldest dropped when the buffer is full.
    Listen {
        exchange: String,
        capacity: u32,
        out: async_channel::Sender<Message>,
        buffered: async_channel::Receiver<Message>,
    },
}

/// Starts a consumer thread; returns once its first consumer is registered (or failed).
pub(crate) fn spawn(
    name: String,
    owner: async_channel::Sender<Command>,
    mode: Mode,
    control: Receiver<Control>,
) -> Result<async_channel::Receiver<Result<(), Error>>, Error> {
    let (ready_tx, ready_rx) = oneshot();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || run(owner, mode, control, ready_tx))
        .map_err(|e| Error::new(ErrorKind::Other, "cannot start an amqp consumer thread").with_source(e))?;
    Ok(ready_rx)
}

fn run(owner: async_channel::Sender<Command>, mode: Mode, control: Receiver<Control>, ready: Reply<Result<(), Error>>) {
    let mut generation = 0;
    let mut ready = Some(ready);
    loop {
        generation += 1;
        let (reply, channel) = oneshot();
        if owner.send_blocking(Command::OpenChannel { reply }).is_err() {
            return;
        }
        let Ok(channel) = channel.recv_blocking() else { return };
        match consume(&channel, &mode, &control, generation, &mut ready) {
            Ended::Stopped(reply) => {
                let _ = channel.close();
                if let Some(r) = reply {
                    let _ = r.try_send(());
                }
                return;
            }
            Ended::Failed(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.try_send(Err(e));
                    return;
                }
                log::warn!("amqp consumer: {e}; retrying");
                // A declare refused while connected would fail again at once: pace it, but still stop on request.
                if let Ok(Control::Stop { reply }) = control.recv_timeout(Duration::from_secs(1)) {
                    if let Some(r) = reply {
                        let _ = r.try_send(());
                    }
                    return;
                }
            }
            Ended::Lost => log::info!("amqp consumer: channel lost, resuming"),
        }
        // Jobs still buffered came from the dead channel: the broker requeued them already.
        match &mode {
            Mode::Jobs { buffered, .. } => while buffered.try_recv().is_ok() {},
            Mode::Listen { .. } => {}
        }
    }
}

/// A job's tag: the channel generation in the high bits, so a tag of a dead channel never
/// settles a delivery of its successor (delivery tags restart at 1 on every channel).
fn job_tag(generation: u64, delivery_tag: u64) -> u64 {
    (generation << 40) | (delivery_tag & ((1 << 40) - 1))
}

enum Ended {
    Stopped(Option<Reply<()>>),
    Failed(Error),
    Lost,
}

fn consume(
    channel: &Channel,
    mode: &Mode,
    control: &Receiver<Control>,
    generation: u64,
    ready: &mut Option<Reply<Result<(), Error>>>,
) -> Ended {
    let setup = || -> amiquip::Result<(String, u16)> {
        match mode {
            Mode::Jobs { queue, prefetch, .. } => Ok((queue.to_string(), (*prefetch).max(1))),
            Mode::Listen { exchange, capacity, .. } => {
                Ok((topology::declare_listener(channel, exchange, *capacity)?, 64))
            }
        }
    };
    let consumer = setup().and_then(|(queue, prefetch)| {
        channel.qos(0, prefetch, false)?;
        channel.basic_consume(queue, ConsumerOptions::default())
    });
    let consumer = match consumer {
        Ok(c) => c,
        Err(e) => return Ended::Failed(broker_error("cannot start consuming", e)),
    };
    if let Some(r) = ready.take() {
        let _ = r.try_send(Ok(()));
    }
    let mut held: HashMap<u64, Delivery> = HashMap::new();
    loop {
        select! {
            recv(consumer.receiver()) -> m => match m {
                Ok(ConsumerMessage::Delivery(d)) => match mode {
                    Mode::Jobs { queue, out, settle, .. } => {
                        let (headers, attempt) = headers::from_table(d.properties.headers().as_ref());
                        let message = Message { key: None, partition: None, payload: d.body.clone(), headers };
                        let tag = job_tag(generation, d.delivery_tag());
                        let job = Job::new(message, queue.clone(), d.redelivered, attempt, tag, settle.clone());
                        held.insert(tag, d);
                        // Room is guaranteed by prefetch; a closed stream means the user is
                        // stopping: the job's drop requeues it.
                        if let Err(e) = out.try_send(job) {
                            drop(e.into_inner());
                        }
                    }
                    Mode::Listen { out, buffered, .. } => {
                        let (headers, _) = headers::from_table(d.properties.headers().as_ref());
                        let message = Message { key: None, partition: None, payload: d.body.clone(), headers };
                        if out.is_full() {
                            let _oldest = buffered.try_recv();
                        }
                        let _ = out.try_send(message);
                        if let Err(e) = d.ack(channel) {
                            log::warn!("amqp listener: ack failed: {e}");
                        }
                    }
                },
                Ok(other) => {
                    log::warn!("amqp consumer ended: {other:?}");
                    return Ended::Lost;
                }
                Err(_) => return Ended::Lost,
            },
            recv(control) -> c => match c {
                Ok(Control::Settle { tag, how, reply }) => {
                    let result = match held.remove(&tag) {
                        None => Err(Error::new(ErrorKind::Closed, "job no longer held: its channel closed and it was requeued")),
                        Some(d) => match how {
                            Settle::Ack => d.ack(channel),
                            Settle::Requeue => d.nack(channel, true),
                        }
                        .map_err(|e| broker_error("cannot settle the job", e)),
                    };
                    if let Some(r) = reply {
                        let _ = r.try_send(result);
                    }
                }
                Ok(Control::Stop { reply }) => return Ended::Stopped(reply),
                Err(_) => return Ended::Stopped(None),
            },
        }
    }
}

/// Sends `control` to a consumer thread (unbounded: at most one message per job handed out,
/// plus one stop).
pub(crate) fn send(to: &Sender<Control>, control: Control) -> bool {
    to.send(control).is_ok()
}
