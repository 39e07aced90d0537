//! [`Browse`] on RabbitMQ: a pass owns its own connection on its own thread and takes messages
//! with `basic.get` without acking them. A message removed is acked (after the caller's
//! republish was confirmed); when the pass ends, is dropped, or its process dies, the channel
//! closes and RabbitMQ puts every message it still holds back in its original position.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use amiquip::{AmqpProperties, Channel, Confirm, Connection, Delivery, Publish};
use async_trait::async_trait;
use crossbeam_channel::{Receiver, Sender};
use switchboard_ports::{Browse, BrowsePass, Browsed, Error, ErrorKind, Message, PassBroker, PublishError};

use crate::connection::{broker_error, oneshot, Reply};
use crate::{headers, AmqpConfig, AmqpWorkQueue};

enum Op {
    Send { queue: String, message: Message, reply: Reply<Result<(), PublishError>> },
    Remove { index: usize, reply: Reply<Result<(), Error>> },
    Finish { reply: Reply<()> },
}

#[async_trait]
impl Browse for AmqpWorkQueue {
    async fn browse(&self, source: &str, max: usize) -> Result<BrowsePass, Error> {
        let config = self.config().clone();
        let (ops_tx, ops_rx) = crossbeam_channel::unbounded();
        let (ready, answer) = oneshot();
        let queue = source.to_owned();
        std::thread::Builder::new()
            .name(format!("amqp-browse-{queue}"))
            .spawn(move || run(config, queue, max, ops_rx, ready))
            .map_err(|e| Error::new(ErrorKind::Other, format!("cannot start the browse thread: {e}")))?;
        let entries = answer.recv().await.map_err(|_| Error::closed())??;
        Ok(BrowsePass::new(entries, AmqpPass { ops: ops_tx }))
    }
}

struct AmqpPass {
    ops: Sender<Op>,
}

#[async_trait]
impl PassBroker for AmqpPass {
    async fn send(&mut self, destination: &str, message: Message) -> Result<(), PublishError> {
        let (reply, answer) = oneshot();
        if let Err(e) = self.ops.send(Op::Send { queue: destination.to_owned(), message, reply }) {
            let Op::Send { message, .. } = e.into_inner() else { unreachable!("sent a send") };
            return Err(PublishError::new(Error::closed(), message));
        }
        answer.recv().await.unwrap_or_else(|_| Err(PublishError::new(Error::closed(), Message::default())))
    }

    async fn remove(&mut self, _: &[Browsed], index: usize) -> Result<(), Error> {
        let (reply, answer) = oneshot();
        self.ops.send(Op::Remove { index, reply }).map_err(|_| Error::closed())?;
        answer.recv().await.map_err(|_| Error::closed())?
    }

    async fn finish(self: Box<Self>) -> Result<(), Error> {
        let (reply, answer) = oneshot();
        if self.ops.send(Op::Finish { reply }).is_ok() {
            let _ = answer.recv().await;
        }
        Ok(())
    }
}

struct Held {
    connection: Connection,
    get: Channel,
    publish: Channel,
    confirms: Receiver<Confirm>,
    next_tag: u64,
    deliveries: Vec<Option<Delivery>>,
    known_queues: HashSet<String>,
    publish_timeout: Duration,
}

fn run(config: AmqpConfig, queue: String, max: usize, ops: Receiver<Op>, ready: Reply<Result<Vec<Browsed>, Error>>) {
    let mut held = match open(&config, &queue, max) {
        Ok((held, entries)) => {
            let _ = ready.try_send(Ok(entries));
            held
        }
        Err(e) => {
            let _ = ready.try_send(Err(e));
            return;
        }
    };
    // Ends on Finish or when the pass is dropped (the sender goes away).
    while let Ok(op) = ops.recv() {
        match op {
            Op::Send { queue, message, reply } => {
                let _ = reply.try_send(held.send(&queue, message));
            }
            Op::Remove { index, reply } => {
                let _ = reply.try_send(held.remove(index));
            }
            Op::Finish { reply } => {
                held.close();
                let _ = reply.try_send(());
                return;
            }
        }
    }
    held.close();
}

fn open(config: &AmqpConfig, queue: &str, max: usize) -> Result<(Held, Vec<Browsed>), Error> {
    let mut connection = crate::tls::open(&config.connect_url(), &config.tls)?;
    let channels = (|| -> amiquip::Result<_> {
        let get = connection.open_channel(None)?;
        let publish = connection.open_channel(None)?;
        let confirms = publish.listen_for_publisher_confirms()?;
        publish.enable_publisher_confirms()?;
        Ok((get, publish, confirms))
    })();
    let (get, publish, confirms) = channels.map_err(|e| broker_error("cannot open a channel", e))?;
    let mut deliveries = Vec::new();
    let mut entries = Vec::new();
    while deliveries.len() < max {
        match get.basic_get(queue, false) {
            Ok(Some(g)) => {
                let (headers, _) = headers::from_table(g.delivery.properties.headers().as_ref());
                let message = Message { key: None, partition: None, payload: g.delivery.body.clone(), headers };
                entries.push(Browsed { partition: None, offset: deliveries.len() as i64, message });
                deliveries.push(Some(g.delivery));
            }
            Ok(None) => break,
            Err(e) => {
                let _ = connection.close();
                return Err(broker_error(&format!("cannot read queue {queue}"), e));
            }
        }
    }
    let held = Held {
        connection,
        get,
        publish,
        confirms,
        next_tag: 0,
        deliveries,
        known_queues: HashSet::new(),
        publish_timeout: config.publish_timeout,
    };
    Ok((held, entries))
}

impl Held {
    /// Publishes to `queue` through the default exchange and waits for the broker's confirm.
    /// The queue is checked first: the default exchange drops (and confirms) a message routed
    /// to no queue, which would lose it.
    fn send(&mut self, queue: &str, message: Message) -> Result<(), PublishError> {
        if !self.known_queues.contains(queue) {
            if let Err(e) = self.check_queue(queue) {
                return Err(PublishError::new(e, message));
            }
            self.known_queues.insert(queue.to_owned());
        }
        // A redriven job starts again at attempt 1.
        let props =
            AmqpProperties::default().with_delivery_mode(2).with_headers(headers::to_table(&message.headers, 1));
        let publish = Publish::with_properties(&message.payload, queue.to_owned(), props);
        if let Err(e) = self.publish.basic_publish(String::new(), publish) {
            return Err(PublishError::new(broker_error("publish failed", e), message));
        }
        self.next_tag += 1;
        let deadline = Instant::now() + self.publish_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.confirms.recv_timeout(left) {
                Ok(Confirm::Ack(p)) if p.delivery_tag >= self.next_tag => return Ok(()),
                Ok(Confirm::Nack(p)) if p.delivery_tag >= self.next_tag => {
                    let e = Error::new(ErrorKind::Unavailable, format!("rabbitmq refused the publish to {queue}"));
                    return Err(PublishError::new(e, message));
                }
                Ok(_) => continue,
                Err(_) => {
                    let e = Error::new(ErrorKind::Timeout, format!("publish to {queue} not confirmed in time"));
                    return Err(PublishError::new(e, message));
                }
            }
        }
    }

    fn check_queue(&mut self, queue: &str) -> Result<(), Error> {
        let ch = self.connection.open_channel(None).map_err(|e| broker_error("cannot open a channel", e))?;
        match ch.queue_declare_passive(queue) {
            Ok(_) => {
                let _ = ch.close();
                Ok(())
            }
            // The broker closed the channel: the queue does not exist.
            Err(e) => Err(Error::new(ErrorKind::Invalid, format!("queue {queue} does not exist"))
                .with_source(crate::tls::Redacted(crate::tls::redact(&e.to_string())))),
        }
    }

    fn remove(&mut self, index: usize) -> Result<(), Error> {
        let delivery = self
            .deliveries
            .get_mut(index)
            .and_then(Option::take)
            .ok_or_else(|| Error::new(ErrorKind::Invalid, format!("no entry {index} held by this pass")))?;
        delivery.ack(&self.get).map_err(|e| broker_error("ack failed", e))
    }

    fn close(self) {
        // Closing the channel hands back every message not acked, in its original position.
        let _ = self.get.close();
        let _ = self.publish.close();
        let _ = self.connection.close();
    }
}
