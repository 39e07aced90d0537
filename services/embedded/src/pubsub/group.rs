use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_channel::Sender;
use async_trait::async_trait;
use event_listener::Event;
use futures_lite::future;
use switchboard_ports::{Closer, Delivery, Error, Message, OffsetTracker, Settle};

use super::config::BrokerConfig;
use super::lock;
use super::topic::Topic;

/// A consumer group on one topic: committed offsets and the members sharing the partitions.
pub(super) struct Group {
    /// Next offset to read per partition: what a new owner of the partition starts from.
    /// Atomics so acks never take the group lock.
    pub(super) committed: Box<[AtomicI64]>,
    /// Members in join order; the lock is held for a whole rebalance.
    members: Mutex<Vec<Arc<Member>>>,
    /// The topic's "room was made" event: commits and leaves may let full partitions trim.
    freed: Arc<Event>,
}

/// One subscription's membership: owned partitions, positions, unacked offsets.
pub(super) struct Member {
    group: Arc<Group>,
    state: Mutex<MemberState>,
    /// Notified on assignment changes, nacks, leaving, and acks that lift the in-flight limit.
    wake: Event,
    config: BrokerConfig,
}

struct MemberState {
    /// Per partition: `Some(next offset to fetch)` while the partition is assigned here.
    positions: Vec<Option<i64>>,
    tracker: OffsetTracker,
    /// Nacked deliveries, sent again before new messages.
    redeliver: VecDeque<Pending>,
    /// Fetching stopped at `max_in_flight`; the next ack below the limit wakes the task.
    throttled: bool,
    closed: bool,
    /// Partition to fetch from first, rotated so no partition starves the others.
    cursor: usize,
}

type Pending = (i32, i64, Message);

enum Fill {
    Ready,
    Empty,
    Throttled,
    Closed,
}

impl Group {
    pub(super) fn new(start: Vec<i64>, freed: Arc<Event>) -> Self {
        Group { committed: start.into_iter().map(AtomicI64::new).collect(), members: Mutex::new(Vec::new()), freed }
    }

    pub(super) fn committed_offsets(&self) -> Vec<i64> {
        self.committed.iter().map(|c| c.load(Ordering::Acquire)).collect()
    }

    pub(super) fn member_count(&self) -> usize {
        lock(&self.members).len()
    }

    /// Adds a member, rebalances, and starts its delivery task feeding `tx`.
    pub(super) fn join(
        self: &Arc<Self>,
        topic: Arc<Topic>,
        config: BrokerConfig,
        tx: Sender<Delivery>,
    ) -> MemberHandle {
        let member = self.member(config);
        {
            let mut members = lock(&self.members);
            members.push(member.clone());
            self.rebalance(&members);
        }
        smol::spawn(deliver(member.clone(), topic, tx)).detach();
        MemberHandle(member)
    }

    /// The only member of a group of its own (not listed on the topic, so it holds no
    /// messages back from retention), reading `partitions` from the group's start offsets:
    /// a manual assignment.
    pub(super) fn assigned(
        self: &Arc<Self>,
        topic: Arc<Topic>,
        config: BrokerConfig,
        tx: Sender<Delivery>,
        partitions: &[i32],
    ) -> MemberHandle {
        let member = self.member(config);
        {
            let mut s = lock(&member.state);
            for &p in partitions {
                s.positions[p as usize] = Some(self.committed[p as usize].load(Ordering::Acquire));
            }
        }
        lock(&self.members).push(member.clone());
        smol::spawn(deliver(member.clone(), topic, tx)).detach();
        MemberHandle(member)
    }

    fn member(self: &Arc<Self>, config: BrokerConfig) -> Arc<Member> {
        Arc::new(Member {
            group: self.clone(),
            state: Mutex::new(MemberState {
                positions: vec![None; self.committed.len()],
                tracker: OffsetTracker::new(),
                redeliver: VecDeque::new(),
                throttled: false,
                closed: false,
                cursor: 0,
            }),
            wake: Event::new(),
            config,
        })
    }

    /// Range assignment over members in join order. Revokes everywhere first, then assigns
    /// from the committed offsets, so a late ack of a former owner can never be overtaken.
    fn rebalance(&self, members: &[Arc<Member>]) {
        let n = self.committed.len();
        let m = members.len();
        if m == 0 {
            return;
        }
        let owner = |p: usize| p * m / n;
        for (i, member) in members.iter().enumerate() {
            let mut s = lock(&member.state);
            for p in 0..n {
                if s.positions[p].is_some() && owner(p) != i {
                    s.revoke(p);
                }
            }
        }
        for (i, member) in members.iter().enumerate() {
            {
                let mut s = lock(&member.state);
                for p in (0..n).filter(|&p| owner(p) == i) {
                    if s.positions[p].is_none() {
                        s.positions[p] = Some(self.committed[p].load(Ordering::Acquire));
                    }
                }
            }
            member.wake.notify(1);
        }
    }

    fn leave(&self, member: &Arc<Member>) {
        let mut members = lock(&self.members);
        {
            let mut s = lock(&member.state);
            if s.closed {
                return;
            }
            s.closed = true;
            for p in 0..s.positions.len() {
                s.revoke(p);
            }
        }
        members.retain(|m| !Arc::ptr_eq(m, member));
        self.rebalance(&members);
        member.wake.notify(1);
        // A group left without members owes nothing any more.
        self.freed.notify(usize::MAX);
    }
}

impl MemberState {
    fn revoke(&mut self, partition: usize) {
        self.positions[partition] = None;
        self.tracker.revoke(partition as i32);
        self.redeliver.retain(|(p, _, _)| *p as usize != partition);
    }
}

impl Member {
    /// Moves up to `fetch_batch` deliverable messages into `batch`, recording them in flight.
    fn fill(&self, topic: &Topic, batch: &mut Vec<Pending>) -> Fill {
        let mut s = lock(&self.state);
        if s.closed {
            return Fill::Closed;
        }
        let budget = self.config.fetch_batch;
        while batch.len() < budget {
            match s.redeliver.pop_front() {
                Some(pending) => batch.push(pending),
                None => break,
            }
        }
        if !batch.is_empty() {
            return Fill::Ready;
        }
        let in_flight = s.tracker.in_flight();
        if in_flight >= self.config.max_in_flight {
            s.throttled = true;
            return Fill::Throttled;
        }
        let budget = budget.min(self.config.max_in_flight - in_flight);
        let n = s.positions.len();
        let first = s.cursor;
        s.cursor = (first + 1) % n;
        for p in (first..n).chain(0..first) {
            let Some(mut pos) = s.positions[p] else {
                continue;
            };
            let start = batch.len();
            {
                let log = lock(&topic.partitions[p].log);
                if pos < log.base {
                    log::warn!(
                        "embedded broker: {}/{p}: offsets {pos}..{} dropped by retention before delivery",
                        topic.name,
                        log.base
                    );
                    pos = log.base;
                }
                let skip = (pos - log.base) as usize;
                let take = (log.messages.len() - skip).min(budget - start);
                batch.extend(
                    log.messages
                        .range(skip..skip + take)
                        .enumerate()
                        .map(|(i, m)| (p as i32, pos + i as i64, m.clone())),
                );
            }
            for (_, offset, _) in &batch[start..] {
                s.tracker.delivered(p as i32, *offset);
            }
            s.positions[p] = Some(pos + (batch.len() - start) as i64);
            if batch.len() >= budget {
                break;
            }
        }
        if batch.is_empty() {
            Fill::Empty
        } else {
            Fill::Ready
        }
    }
}

impl Settle for Member {
    fn ack(&self, partition: i32, offset: i64) {
        let wake = {
            let mut s = lock(&self.state);
            if s.closed {
                return;
            }
            if let Some(mark) = s.tracker.acked(partition, offset) {
                if let Some(c) = self.group.committed.get(partition as usize) {
                    c.fetch_max(mark, Ordering::AcqRel);
                    // One atomic load when no publisher waits for room.
                    self.group.freed.notify(usize::MAX);
                }
            }
            let lift = s.throttled && s.tracker.in_flight() < self.config.max_in_flight;
            if lift {
                s.throttled = false;
            }
            lift
        };
        if wake {
            self.wake.notify(1);
        }
    }

    fn nack(&self, partition: i32, offset: i64, message: Message) {
        {
            let mut s = lock(&self.state);
            let owned = s.positions.get(partition as usize).is_some_and(Option::is_some);
            // A revoked partition is re-read from the committed offset by its next owner.
            if s.closed || !owned {
                return;
            }
            s.redeliver.push_back((partition, offset, message));
        }
        self.wake.notify(1);
    }
}

/// The member's delivery task: copies batches out of the logs and sends them on the
/// subscription channel, sleeping on events (never polling) when there is nothing to send.
async fn deliver(member: Arc<Member>, topic: Arc<Topic>, tx: Sender<Delivery>) {
    let settle: Arc<dyn Settle> = member.clone();
    let mut batch = Vec::with_capacity(member.config.fetch_batch);
    loop {
        let mut fill = member.fill(&topic, &mut batch);
        if !matches!(fill, Fill::Ready | Fill::Closed) {
            // Listen before re-checking so an append or ack in between is not missed.
            let woken = member.wake.listen();
            match fill {
                Fill::Throttled => {
                    fill = member.fill(&topic, &mut batch);
                    if matches!(fill, Fill::Throttled | Fill::Empty) {
                        woken.await;
                        continue;
                    }
                }
                _ => {
                    let appended = topic.appended.listen();
                    fill = member.fill(&topic, &mut batch);
                    if matches!(fill, Fill::Throttled | Fill::Empty) {
                        future::or(woken, appended).await;
                        continue;
                    }
                }
            }
        }
        if matches!(fill, Fill::Closed) {
            return;
        }
        for (partition, offset, message) in batch.drain(..) {
            let delivery = Delivery::new(message, topic.name.clone(), partition, offset, settle.clone());
            if tx.send(delivery).await.is_err() {
                // The subscription was dropped or closed: leave so the partitions move on.
                member.group.leave(&member);
                return;
            }
        }
    }
}

/// Leaves the group when the subscription closes or is dropped.
pub(super) struct MemberHandle(Arc<Member>);

impl Drop for MemberHandle {
    fn drop(&mut self) {
        self.0.group.leave(&self.0);
    }
}

#[async_trait]
impl Closer for MemberHandle {
    async fn close(self: Box<Self>) -> Result<(), Error> {
        // Acks commit immediately, so leaving (on drop) is all there is to do.
        Ok(())
    }
}
