//! The connection thread: owns the AMQP connection and its publishing channel, takes commands
//! over a bounded async channel and answers on one-shot channels.
//!
//! Publishes are pipelined: each waits in `pending` for its publisher confirm, which a small
//! forwarder thread turns into a command. When the connection is lost, unconfirmed publishes go
//! back to `parked` and are sent again after the reconnect (at-least-once: a job whose confirm
//! was lost may be stored twice).
//!
//! A reconnect that fails marks the link down ([`Link::is_down`]): until a connect succeeds,
//! publishes fail at once with `Unavailable` (so callers answer "retry later" now, not at
//! their deadline), and those parked are failed the same way.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{AmqpProperties, Channel, Confirm, ConfirmSmoother, Connection, Publish};
use futures_lite::future;
use switchboard_ports::{Error, ErrorKind, Message, PublishError, QueueDepth, QueueOptions};
use switchboard_resilience::{Delays, Jitter, RetryPolicy};

use crate::bounded::{self, Failed, SharedConnection};
use crate::{headers, topology, AmqpConfig};

/// Whether the connection is known to be down: set when a reconnect failed, cleared by a
/// successful connect. Shared by the connection thread and every handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct Link(Arc<AtomicBool>);

impl Link {
    pub(crate) fn is_down(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set_down(&self, down: bool) {
        self.0.store(down, Ordering::Relaxed);
    }
}

/// The error of a publish while the link is down.
pub(crate) fn unreachable() -> Error {
    Error::new(ErrorKind::Unavailable, "rabbitmq unreachable: reconnecting")
}

/// Topology work run on a temporary channel (on a thread of its own, see [`bounded`]).
type TempWork = Arc<dyn Fn(&Channel) -> amiquip::Result<()> + Send + Sync>;

/// Where a reply goes: a one-shot channel (bounded, capacity 1).
pub(crate) type Reply<T> = async_channel::Sender<T>;

/// A one-shot channel.
pub(crate) fn oneshot<T>() -> (Reply<T>, async_channel::Receiver<T>) {
    async_channel::bounded(1)
}

/// A publish: to a queue through the default exchange, or to a fanout exchange.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub message: Message,
    pub attempt: u32,
    /// Per-message TTL (a retry shorter than its queue's delay).
    pub expiration: Option<Duration>,
}

/// Declaring or deleting a queue; its retry and dead-letter queues go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueChange {
    Declare,
    Delete,
}

impl QueueChange {
    fn apply(self, channel: &Channel, queue: &str, options: &QueueOptions) -> amiquip::Result<()> {
        match self {
            QueueChange::Declare => topology::declare(channel, queue, options),
            QueueChange::Delete => topology::delete(channel, queue, options),
        }
    }

    fn failure(self) -> &'static str {
        match self {
            QueueChange::Declare => "cannot declare the queue",
            QueueChange::Delete => "cannot delete the queue",
        }
    }
}

pub(crate) enum Command {
    Queue {
        change: QueueChange,
        queue: String,
        options: QueueOptions,
        reply: Reply<Result<(), Error>>,
    },
    DeclareFanout {
        exchange: String,
        reply: Reply<Result<(), Error>>,
    },
    Publish {
        outgoing: Outgoing,
        reply: Reply<Result<(), PublishError>>,
    },
    /// A queue's ready messages and consumers (a passive declare).
    Inspect {
        queue: String,
        reply: Reply<Result<QueueDepth, Error>>,
    },
    /// A fresh channel for a consumer, once connected.
    OpenChannel {
        reply: Reply<Channel>,
    },
    Close {
        reply: Reply<()>,
    },
    Confirmed {
        session: u64,
        confirm: Confirm,
    },
    Lost {
        session: u64,
    },
}

pub(crate) fn broker_error(what: &str, e: amiquip::Error) -> Error {
    // amiquip's messages quote the URL, password included: only a redacted copy is kept.
    let text = crate::tls::redact(&e.to_string());
    Error::new(crate::error::kind_of(&e), what.to_owned()).with_source(crate::tls::Redacted(text))
}

struct Pending {
    outgoing: Outgoing,
    reply: Reply<Result<(), PublishError>>,
    deadline: Instant,
}

impl Pending {
    fn fail(self, error: Error) {
        let _ = self.reply.try_send(Err(PublishError::new(error, self.outgoing.message)));
    }
}

struct Session {
    id: u64,
    channel: Channel,
    smoother: ConfirmSmoother,
    next_tag: u64,
    // Dropped last: closing the connection ends its channels.
    connection: SharedConnection,
}

pub(crate) struct Owner {
    config: AmqpConfig,
    commands: async_channel::Receiver<Command>,
    /// Sender handed to forwarder threads.
    events: async_channel::Sender<Command>,
    session: Option<Session>,
    sessions: u64,
    queues: BTreeMap<String, QueueOptions>,
    exchanges: BTreeSet<String>,
    pending: BTreeMap<u64, Pending>,
    parked: VecDeque<Pending>,
    channel_waiters: Vec<Reply<Channel>>,
    backoff: Delays,
    next_attempt: Instant,
    closing: Option<Reply<()>>,
    link: Link,
}

impl Owner {
    /// Connects once (so a wrong URL or a broker down fails at start), then runs the thread.
    pub(crate) fn start(config: AmqpConfig) -> Result<(async_channel::Sender<Command>, Link), Error> {
        let (tx, rx) = async_channel::bounded(config.command_capacity.max(1));
        let backoff = Self::backoff(&config);
        let mut owner = Owner {
            config,
            commands: rx,
            events: tx.clone(),
            session: None,
            sessions: 0,
            queues: BTreeMap::new(),
            exchanges: BTreeSet::new(),
            pending: BTreeMap::new(),
            parked: VecDeque::new(),
            channel_waiters: Vec::new(),
            backoff,
            next_attempt: Instant::now(),
            closing: None,
            link: Link::default(),
        };
        let link = owner.link.clone();
        owner.connect()?;
        std::thread::Builder::new()
            .name("amqp-connection".into())
            .spawn(move || owner.run())
            .map_err(|e| Error::new(ErrorKind::Other, "cannot start the amqp thread").with_source(e))?;
        Ok((tx, link))
    }

    fn backoff(config: &AmqpConfig) -> Delays {
        RetryPolicy::new()
            .max_retries(u32::MAX)
            .initial_delay(config.reconnect_min)
            .max_delay(config.reconnect_max)
            .jitter(Jitter::Equal)
            .delays()
    }

    fn connect(&mut self) -> Result<(), Error> {
        let connection =
            // Bounded by the connect timeout: this thread serves every caller meanwhile.
            crate::tls::open(&self.config.connect_url(), &self.config.tls)?;
        let session = self.open_session(connection).map_err(|e| e.into_error("cannot open a channel"))?;
        // Topology first: parked publishes and consumers need their queues.
        let (queues, exchanges) = (self.queues.clone(), self.exchanges.clone());
        let shared = session.connection.clone();
        let redeclared = bounded::within(self.config.connect_timeout, move || {
            let ch = bounded::lock(&shared).open_channel(None)?;
            for (queue, options) in &queues {
                topology::declare(&ch, queue, options)?;
            }
            for exchange in &exchanges {
                topology::declare_fanout(&ch, exchange)?;
            }
            ch.close()
        });
        if let Err(e) = redeclared {
            bounded::release(session.channel, self.config.connect_timeout);
            bounded::close(session.connection, self.config.connect_timeout);
            return Err(e.into_error("cannot re-declare the topology"));
        }
        log::info!("amqp: connected (session {})", session.id);
        self.session = Some(session);
        self.link.set_down(false);
        self.backoff = Self::backoff(&self.config);
        for reply in std::mem::take(&mut self.channel_waiters) {
            self.give_channel(reply);
        }
        for p in std::mem::take(&mut self.parked) {
            self.publish(p);
        }
        Ok(())
    }

    /// One reconnect attempt; on failure the link is down: what waits for it fails now, and
    /// the next attempt waits for the backoff.
    fn reconnect(&mut self) -> Result<(), Error> {
        let outcome = self.connect();
        if let Err(e) = &outcome {
            let delay = self.backoff.next().unwrap_or(self.config.reconnect_max);
            log::warn!("amqp: reconnect failed, next try in {delay:?}: {e}");
            self.next_attempt = Instant::now() + delay;
            self.link.set_down(true);
            for p in std::mem::take(&mut self.parked) {
                p.fail(unreachable());
            }
        }
        outcome
    }

    fn open_session(&mut self, connection: Connection) -> Result<Session, Failed> {
        let connection = bounded::share(connection);
        let shared = connection.clone();
        let opened = bounded::within(self.config.connect_timeout, move || {
            let channel = bounded::lock(&shared).open_channel(None)?;
            let confirms = channel.listen_for_publisher_confirms()?;
            channel.enable_publisher_confirms()?;
            Ok((channel, confirms))
        });
        let (channel, confirms) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                bounded::close(connection, self.config.connect_timeout);
                return Err(e);
            }
        };
        self.sessions += 1;
        let id = self.sessions;
        let events = self.events.clone();
        // Confirms arrive on a crossbeam channel; forwarding them makes them commands, so the
        // thread waits on one queue. The receiver disconnects when the channel or connection dies.
        let spawned = std::thread::Builder::new().name("amqp-confirms".into()).spawn(move || {
            for confirm in confirms.iter() {
                if events.send_blocking(Command::Confirmed { session: id, confirm }).is_err() {
                    return;
                }
            }
            let _ = events.send_blocking(Command::Lost { session: id });
        });
        if let Err(e) = spawned {
            log::error!("amqp: cannot start the confirm forwarder: {e}");
        }
        Ok(Session { id, channel, smoother: ConfirmSmoother::new(), next_tag: 0, connection })
    }

    fn run(mut self) {
        loop {
            self.expire();
            if self.session.is_none() && Instant::now() >= self.next_attempt && self.closing.is_none() {
                let _ = self.reconnect();
            }
            if self.closing.is_some() && self.pending.is_empty() && (self.parked.is_empty() || self.session.is_none()) {
                break;
            }
            // Wake for the next reconnect attempt or publish deadline even when no command comes.
            let mut wake = self.pending.values().chain(&self.parked).map(|p| p.deadline).min();
            if self.session.is_none() {
                wake = Some(wake.map_or(self.next_attempt, |w| w.min(self.next_attempt)));
            }
            let command = match wake {
                None => self.commands.recv_blocking().ok(),
                Some(at) => {
                    let timer = async_io::Timer::at(at);
                    let got = future::block_on(future::or(async { Some(self.commands.recv().await) }, async {
                        timer.await;
                        None
                    }));
                    match got {
                        None => continue,
                        Some(c) => c.ok(),
                    }
                }
            };
            let Some(command) = command else { break };
            self.handle(command);
        }
        for p in std::mem::take(&mut self.parked).into_iter().chain(std::mem::take(&mut self.pending).into_values()) {
            p.fail(Error::closed());
        }
        if let Some(s) = self.session.take() {
            bounded::release(s.channel, self.config.connect_timeout);
            bounded::close(s.connection, self.config.connect_timeout);
        }
        if let Some(reply) = self.closing.take() {
            let _ = reply.try_send(());
        }
        log::info!("amqp: connection thread done");
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Publish { outgoing, reply } => {
                let p = Pending { outgoing, reply, deadline: Instant::now() + self.config.publish_timeout };
                if self.closing.is_some() {
                    p.fail(Error::closed());
                } else if self.session.is_none() && self.link.is_down() {
                    p.fail(unreachable());
                } else {
                    self.publish(p);
                }
            }
            Command::Queue { change, queue, options, reply } => {
                let (q, o) = (queue.clone(), options.clone());
                let r = self.on_temp_channel(change.failure(), move |ch| change.apply(ch, &q, &o));
                if r.is_ok() {
                    match change {
                        QueueChange::Declare => self.queues.insert(queue, options),
                        QueueChange::Delete => self.queues.remove(&queue),
                    };
                }
                let _ = reply.try_send(r);
            }
            Command::DeclareFanout { exchange, reply } => {
                let x = exchange.clone();
                let r = self.on_temp_channel("cannot declare the exchange", move |ch| topology::declare_fanout(ch, &x));
                if r.is_ok() {
                    self.exchanges.insert(exchange);
                }
                let _ = reply.try_send(r);
            }
            Command::Inspect { queue, reply } => {
                // The work runs on a thread of its own (bounded by the connect timeout), so the
                // counts come back through a shared cell.
                let counts = Arc::new(std::sync::Mutex::new((0, 0)));
                let seen = counts.clone();
                let r = self.on_temp_channel("cannot inspect the queue", move |ch| {
                    let q = ch.queue_declare_passive(queue.as_str())?;
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) =
                        (q.declared_message_count().unwrap_or(0), q.declared_consumer_count().unwrap_or(0));
                    Ok(())
                });
                // AMQP reports ready messages only; unacked ones need the management API.
                let depth = r.map(|()| {
                    let (messages, consumers) = *counts.lock().unwrap_or_else(|p| p.into_inner());
                    QueueDepth { messages: u64::from(messages), unacked: None, consumers }
                });
                let _ = reply.try_send(depth);
            }
            Command::OpenChannel { reply } => {
                if self.session.is_some() {
                    self.give_channel(reply);
                } else if self.closing.is_none() {
                    self.channel_waiters.push(reply);
                }
            }
            Command::Close { reply } => self.closing = Some(reply),
            Command::Confirmed { session, confirm } => self.confirmed(session, confirm),
            Command::Lost { session } => {
                if self.session.as_ref().is_some_and(|s| s.id == session) {
                    self.lose_session("the publishing channel closed");
                }
            }
        }
    }

    /// Runs a topology command (declare, delete: idempotent) on a channel of its own. A
    /// connection found dead on the way (its loss not yet reported by the confirm forwarder) is
    /// replaced at once and the command tried once more, rather than failing the caller.
    fn on_temp_channel(
        &mut self,
        what: &str,
        f: impl Fn(&Channel) -> amiquip::Result<()> + Send + Sync + 'static,
    ) -> Result<(), Error> {
        if self.session.is_none() {
            return Err(Error::new(ErrorKind::Unavailable, format!("{what}: not connected to rabbitmq")));
        }
        let f: TempWork = Arc::new(f);
        match self.try_temp_channel(&f) {
            Err(e) if e.ends_connection() => {
                self.lose_session(&format!("{what}: {e}"));
                // The caller hears why its command failed; the reconnect's own error is logged.
                if self.reconnect().is_err() {
                    return Err(e.into_error(what));
                }
                self.try_temp_channel(&f).map_err(|e| e.into_error(what))
            }
            r => r.map_err(|e| e.into_error(what)),
        }
    }

    fn try_temp_channel(&mut self, f: &TempWork) -> Result<(), Failed> {
        let Some(s) = self.session.as_ref() else {
            return Err(Failed::Broker(amiquip::Error::EventLoopDropped));
        };
        let (connection, f) = (s.connection.clone(), f.clone());
        bounded::within(self.config.connect_timeout, move || {
            // A failed declare closes its channel: keep that away from the publishing channel.
            let ch = bounded::lock(&connection).open_channel(None)?;
            let r = f(&ch);
            let _ = ch.close();
            r
        })
    }

    fn give_channel(&mut self, reply: Reply<Channel>) {
        let Some(s) = self.session.as_ref() else {
            self.channel_waiters.push(reply);
            return;
        };
        let connection = s.connection.clone();
        let opened = bounded::within(self.config.connect_timeout, move || {
            let mut connection = bounded::lock(&connection);
            connection.open_channel(None)
        });
        match opened {
            Ok(ch) => {
                let _ = reply.try_send(ch);
            }
            Err(e) => {
                self.channel_waiters.push(reply);
                self.lose_session(&format!("cannot open a channel: {e}"));
            }
        }
    }

    fn publish(&mut self, p: Pending) {
        let Some(s) = self.session.as_mut() else {
            self.parked.push_back(p);
            return;
        };
        let o = &p.outgoing;
        let mut props = AmqpProperties::default()
            .with_delivery_mode(2)
            .with_headers(headers::to_table(&o.message.headers, o.attempt));
        if let Some(ttl) = o.expiration {
            props = props.with_expiration(ttl.as_millis().to_string());
        }
        let publish = Publish::with_properties(&o.message.payload, o.routing_key.clone(), props);
        match s.channel.basic_publish(o.exchange.clone(), publish) {
            Ok(()) => {
                s.next_tag += 1;
                self.pending.insert(s.next_tag, p);
            }
            Err(e) => {
                self.parked.push_back(p);
                self.lose_session(&format!("publish failed: {e}"));
            }
        }
    }

    fn confirmed(&mut self, session: u64, confirm: Confirm) {
        let Some(s) = self.session.as_mut().filter(|s| s.id == session) else { return };
        for c in s.smoother.process(confirm) {
            match c {
                Confirm::Ack(c) => {
                    if let Some(p) = self.pending.remove(&c.delivery_tag) {
                        let _ = p.reply.try_send(Ok(()));
                    }
                }
                Confirm::Nack(c) => {
                    if let Some(p) = self.pending.remove(&c.delivery_tag) {
                        // reject-publish on a full queue is the usual cause.
                        p.fail(Error::new(ErrorKind::Unavailable, "broker refused the message (queue full)"));
                    }
                }
            }
        }
    }

    fn lose_session(&mut self, why: &str) {
        let Some(s) = self.session.take() else { return };
        log::warn!("amqp: connection lost (session {}): {why}", s.id);
        // Unconfirmed publishes go first, in their order, before publishes parked since.
        let mut unconfirmed: VecDeque<Pending> = std::mem::take(&mut self.pending).into_values().collect();
        unconfirmed.extend(std::mem::take(&mut self.parked));
        self.parked = unconfirmed;
        // Closing the connection ends every consumer's channel, so consumers come back for new ones.
        bounded::release(s.channel, self.config.connect_timeout);
        bounded::close(s.connection, self.config.connect_timeout);
        self.next_attempt = Instant::now();
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let timeout = || Error::new(ErrorKind::Timeout, "no confirm from rabbitmq in time");
        let expired: Vec<u64> = self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(t, _)| *t).collect();
        for tag in expired {
            if let Some(p) = self.pending.remove(&tag) {
                p.fail(timeout());
            }
        }
        let (late, keep): (VecDeque<Pending>, VecDeque<Pending>) =
            std::mem::take(&mut self.parked).into_iter().partition(|p| p.deadline <= now);
        self.parked = keep;
        for p in late {
            p.fail(Error::new(ErrorKind::Timeout, "rabbitmq unreachable: not enqueued in time"));
        }
    }
}
