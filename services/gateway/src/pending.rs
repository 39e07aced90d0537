use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use parking_lot::Mutex;
use switchboard_proto::Envelope;

use crate::SecondChance;

/// How long the deadline sweeper sleeps at most while requests wait, and how long it waits with
/// none before parking until the next request: a new request's deadline is noticed within this.
const TICK: Duration = Duration::from_millis(50);

/// Requests waiting for their reply, by correlation id, each until its deadline. Bounded: a
/// full map refuses new requests instead of growing.
///
/// The bound counts live handlers, not open waits: a request holds its slot ([`Waiter`] or
/// [`Slot`]) until its handler drops it, also after its deadline ended the wait and while it is
/// still publishing, so `max_pending` bounds the work in flight however slow the broker is.
///
/// Deadlines are kept in order and expired by one sweeper task ([`Pending::expire`]) instead of
/// a timer per request: a reactor timer costs a wake-up of the reactor thread on every insert.
/// The same sweeper gives requests their [`SecondChance`] when one is configured.
#[derive(Debug)]
pub struct Pending {
    inner: Mutex<Inner>,
    capacity: usize,
    second_chance: Option<SecondChance>,
    /// Rings the sweeper when a deadline comes before its next wake-up.
    doorbell: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

#[derive(Debug)]
struct Inner {
    waiting: HashMap<String, Entry>,
    deadlines: BTreeMap<(Instant, u64), String>,
    /// When waiting requests may take their second chance, in order.
    second_chances: BTreeMap<(Instant, u64), String>,
    next_seq: u64,
    /// When the sweeper wakes next; `None` while it is parked.
    sweeper_wakes: Option<Instant>,
    /// Slots held: waiters and bare slots not yet dropped (what `capacity` bounds).
    live: usize,
}

#[derive(Debug)]
struct Entry {
    wake: async_channel::Sender<Wake>,
    deadline: (Instant, u64),
    /// The requests partition the request was last published to, when the gateway chose it.
    partition: Option<i32>,
    /// When the request was registered (published just after).
    since: Instant,
    second_chance: Option<(Instant, u64)>,
}

impl Inner {
    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.waiting.remove(id)?;
        self.deadlines.remove(&entry.deadline);
        if let Some(at) = entry.second_chance {
            self.second_chances.remove(&at);
        }
        Some(entry)
    }

    fn key(&mut self, at: Instant) -> (Instant, u64) {
        self.next_seq += 1;
        (at, self.next_seq)
    }
}

/// What wakes a [`Waiter`].
#[derive(Debug)]
pub enum Wake {
    /// The reply.
    Reply(Envelope),
    /// No reply yet and none likely from where the request waits: publish it again to this
    /// partition (see [`SecondChance`]).
    Republish(i32),
}

/// The map is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingFull;

impl Pending {
    /// A map holding at most `capacity` waiting requests.
    pub fn new(capacity: usize) -> Arc<Self> {
        Self::build(capacity, None)
    }

    /// A map holding at most `capacity` waiting requests, each registered with its partition
    /// given a second chance when that partition falls silent.
    pub fn with_second_chance(capacity: usize, second_chance: SecondChance) -> Arc<Self> {
        Self::build(capacity, Some(second_chance))
    }

    fn build(capacity: usize, second_chance: Option<SecondChance>) -> Arc<Self> {
        Arc::new(Pending {
            inner: Mutex::new(Inner {
                waiting: HashMap::new(),
                deadlines: BTreeMap::new(),
                second_chances: BTreeMap::new(),
                next_seq: 0,
                sweeper_wakes: None,
                live: 0,
            }),
            capacity,
            second_chance,
            doorbell: async_channel::bounded(1),
        })
    }

    /// The partition a request with `id` is to be published to, when this map gives second
    /// chances (the gateway then chooses partitions itself).
    pub fn partition_of(&self, id: &str) -> Option<i32> {
        self.second_chance.as_ref().map(|sc| sc.partition_of(id))
    }

    /// Registers `id` until `deadline`; the returned waiter gets its reply, or `None` once the
    /// deadline has passed (with [`Pending::expire`] running), and frees the entry when dropped.
    pub fn register(self: &Arc<Self>, id: &str, deadline: Instant) -> Result<Waiter, PendingFull> {
        self.register_on(id, deadline, None)
    }

    /// Like [`register`](Pending::register), for a request published to `partition`: with a
    /// [`SecondChance`], its waiter may also be told to publish it again elsewhere.
    pub fn register_on(
        self: &Arc<Self>,
        id: &str,
        deadline: Instant,
        partition: Option<i32>,
    ) -> Result<Waiter, PendingFull> {
        // Room for a second-chance wake and the reply after it.
        let (tx, rx) = async_channel::bounded(2);
        let now = Instant::now();
        let mut inner = self.inner.lock();
        if inner.live >= self.capacity {
            return Err(PendingFull);
        }
        inner.live += 1;
        let slot = Slot { pending: self.clone() };
        let key = inner.key(deadline);
        inner.deadlines.insert(key, id.to_string());
        let second_chance = match (&self.second_chance, partition) {
            (Some(sc), Some(_)) => {
                let at = inner.key(sc.due(now, deadline));
                inner.second_chances.insert(at, id.to_string());
                Some(at)
            }
            _ => None,
        };
        let entry = Entry { wake: tx, deadline: key, partition, since: now, second_chance };
        inner.waiting.insert(id.to_string(), entry);
        let first = second_chance.map_or(deadline, |(at, _)| at);
        let ring = inner.sweeper_wakes.is_none_or(|at| first < at);
        drop(inner);
        if ring {
            let _ = self.doorbell.0.try_send(());
        }
        Ok(Waiter { id: id.to_string(), rx, slot })
    }

    /// A slot for a handler that waits on the broker but not for a reply (a job's enqueue, a
    /// request waiting for the first one with its idempotency key); freed when dropped.
    pub fn slot(self: &Arc<Self>) -> Result<Slot, PendingFull> {
        let mut inner = self.inner.lock();
        if inner.live >= self.capacity {
            return Err(PendingFull);
        }
        inner.live += 1;
        Ok(Slot { pending: self.clone() })
    }

    /// Hands `reply` to its waiter; false when nobody waits for it (timed out, or another
    /// gateway's request).
    pub fn complete(&self, reply: Envelope) -> bool {
        let Some(entry) = self.inner.lock().remove(&reply.id) else {
            return false;
        };
        if let (Some(sc), Some(p)) = (&self.second_chance, entry.partition) {
            sc.answered(p, Instant::now());
        }
        entry.wake.try_send(Wake::Reply(reply)).is_ok()
    }

    /// True while a request waits for the reply with `id`.
    pub fn is_waiting(&self, id: &str) -> bool {
        self.inner.lock().waiting.contains_key(id)
    }

    /// Number of requests in flight: slots held, whether or not their deadline has passed.
    pub fn len(&self) -> usize {
        self.inner.lock().live
    }

    /// True when no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the wait of every request whose deadline has passed, and tells those whose second
    /// chance is due where to publish again; returns how many waits ended.
    fn expire_due(&self, now: Instant) -> usize {
        let mut inner = self.inner.lock();
        while let Some(entry) = inner.second_chances.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            let (Some(sc), Some(entry)) = (&self.second_chance, inner.waiting.get_mut(&id)) else {
                continue;
            };
            entry.second_chance = None;
            let Some(from) = entry.partition else { continue };
            if let Some(to) = sc.target(from, entry.since) {
                // From now on a reply is counted for the partition it was sent to last.
                entry.partition = Some(to);
                let _ = entry.wake.try_send(Wake::Republish(to));
            }
        }
        let mut expired = 0;
        while let Some(entry) = inner.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            // Dropping the sender ends the waiter's `reply()` with `None`.
            if let Some(at) = inner.waiting.remove(&id).and_then(|e| e.second_chance) {
                inner.second_chances.remove(&at);
            }
            expired += 1;
        }
        expired
    }

    /// The sweeper: expires deadlines as they pass, for as long as it is polled and the map
    /// lives. Sleeps until the earliest deadline (at most [`TICK`]), and parks when nothing has
    /// waited for a tick.
    pub fn expire(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + Send + 'static {
        // A weak reference, so a dropped gateway's map (and this task) go away.
        let pending = Arc::downgrade(self);
        let doorbell = self.doorbell.1.clone();
        async move {
            let mut idle_since: Option<Instant> = None;
            loop {
                let Some(this) = pending.upgrade() else { return };
                let now = Instant::now();
                this.expire_due(now);
                let wake = {
                    let mut inner = this.inner.lock();
                    let earliest = [&inner.deadlines, &inner.second_chances]
                        .into_iter()
                        .filter_map(|times| times.first_key_value().map(|(k, _)| k.0))
                        .min();
                    idle_since = if earliest.is_some() { None } else { idle_since.or(Some(now)) };
                    let wake = match (earliest, idle_since) {
                        (Some(at), _) => Some(at.min(now + TICK)),
                        (None, Some(since)) if now < since + TICK => Some(since + TICK),
                        (None, _) => None,
                    };
                    inner.sweeper_wakes = wake;
                    wake
                };
                drop(this);
                let rung = async {
                    // Err: the map is gone; the next upgrade ends the loop.
                    let _ = doorbell.recv().await;
                };
                match wake {
                    Some(at) => {
                        rung.or(async {
                            async_io::Timer::at(at).await;
                        })
                        .await
                    }
                    None => rung.await,
                }
            }
        }
    }
}

/// One request's wait for its reply; holds the request's slot.
#[derive(Debug)]
pub struct Waiter {
    id: String,
    rx: async_channel::Receiver<Wake>,
    slot: Slot,
}

/// One handler's place in the bound of [`Pending`]; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    pending: Arc<Pending>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pending.inner.lock().live -= 1;
    }
}

impl Waiter {
    /// The reply; `None` if the deadline passed (or the entry was dropped) without one.
    /// Second-chance wakes are passed over: see [`next`](Waiter::next) to act on them.
    pub async fn reply(&self) -> Option<Envelope> {
        loop {
            match self.next().await? {
                Wake::Reply(reply) => return Some(reply),
                Wake::Republish(_) => continue,
            }
        }
    }

    /// The reply or a second chance, in the order they came; `None` once the deadline passed.
    pub async fn next(&self) -> Option<Wake> {
        self.rx.recv().await.ok()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // The slot (a field) is freed right after.
        self.slot.pending.inner.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &str) -> Envelope {
        let mut e = Envelope::new();
        e.id = id.into();
        e
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn reply_reaches_its_own_waiter_only() {
        let p = Pending::new(10);
        let a = p.register("a", later()).unwrap();
        let b = p.register("b", later()).unwrap();
        assert!(p.complete(reply("b")));
        assert!(!p.complete(reply("zzz")));
        assert_eq!(smol::block_on(b.reply()).unwrap().id, "b");
        assert!(a.rx.try_recv().is_err());
    }

    #[test]
    fn capacity_is_enforced_and_dropping_frees_the_entry() {
        let p = Pending::new(1);
        let w = p.register("a", later()).unwrap();
        assert_eq!(p.register("b", later()).unwrap_err(), PendingFull);
        drop(w);
        assert!(p.is_empty());
        assert!(p.inner.lock().deadlines.is_empty(), "the deadline goes with the entry");
        assert!(p.register("b", later()).is_ok());
    }

    #[test]
    fn sweeper_ends_only_the_waits_whose_deadline_passed() {
        let p = Pending::new(10);
        let sweeper = smol::spawn(p.expire());
        // Registered after the sweeper parked: the doorbell must wake it.
        std::thread::sleep(TICK * 2);
        let start = Instant::now();
        let short = p.register("short", start + Duration::from_millis(30)).unwrap();
        let long = p.register("long", later()).unwrap();
        let got = smol::block_on(short.reply());
        assert!(got.is_none(), "no reply: the wait ends at the deadline");
        let waited = start.elapsed();
        // Order, not speed: never before its deadline (how late on a loaded machine is for the
        // benchmarks to say), and only the wait whose deadline passed.
        assert!(waited >= Duration::from_millis(30), "ended early: {waited:?}");
        assert!(!p.is_waiting("short"));
        assert!(p.is_waiting("long"), "a later deadline is untouched");
        assert!(p.complete(reply("long")));
        assert_eq!(smol::block_on(long.reply()).unwrap().id, "long");
        drop(sweeper);
    }

    #[test]
    fn expiry_takes_deadlines_in_order_and_frees_their_entries() {
        let p = Pending::new(10);
        let now = Instant::now();
        let _a = p.register("a", now + Duration::from_millis(1)).unwrap();
        let _b = p.register("b", now + Duration::from_millis(3)).unwrap();
        let _c = p.register("c", now + Duration::from_millis(2)).unwrap();
        assert_eq!(p.expire_due(now + Duration::from_millis(2)), 2);
        assert!(p.is_waiting("b"));
        assert!(!p.is_waiting("a") && !p.is_waiting("c"));
        assert_eq!(p.len(), 3, "expired waits still hold their slots");
        assert_eq!(p.register("d", later()).map(drop), Ok(()), "capacity 10 is not reached");
    }

    /// Ten slots over two partitions, with a second chance at 40 % of a 10 s budget: the map,
    /// the start, and the deadline.
    fn two_partitions() -> (Arc<Pending>, Instant, Instant) {
        let start = Instant::now();
        (Pending::with_second_chance(10, SecondChance::new(2, 40)), start, start + Duration::from_secs(10))
    }

    #[test]
    fn a_request_on_a_silent_partition_is_told_where_to_go_once_its_share_of_the_budget_passed() {
        let (p, start, deadline) = two_partitions();
        let silent = p.register_on("silent", deadline, Some(0)).unwrap();
        // A request on partition 1 is answered after "silent" was published: 1 answers.
        let _answered = p.register_on("answered", deadline, Some(1)).unwrap();
        assert!(p.complete(reply("answered")));
        assert_eq!(p.expire_due(start + Duration::from_secs(3)), 0, "not due before 40 % of the budget");
        assert!(silent.rx.try_recv().is_err());
        assert_eq!(p.expire_due(start + Duration::from_secs(5)), 0, "due, but no wait ends");
        assert!(matches!(silent.rx.try_recv(), Ok(Wake::Republish(1))));
        assert!(p.inner.lock().second_chances.is_empty(), "once only");
        // The reply, whichever partition answered, still reaches the waiter, and counts for 1.
        assert!(p.complete(reply("silent")));
        assert_eq!(smol::block_on(silent.reply()).unwrap().id, "silent");
    }

    #[test]
    fn a_request_on_a_partition_that_answers_others_waits_without_a_second_chance() {
        let (p, start, deadline) = two_partitions();
        let slow = p.register_on("slow", deadline, Some(0)).unwrap();
        let _other = p.register_on("other", deadline, Some(1)).unwrap();
        let _later = p.register_on("later", deadline, Some(0)).unwrap();
        assert!(p.complete(reply("other")));
        assert!(p.complete(reply("later")), "partition 0 answered after `slow` was published");
        p.expire_due(start + Duration::from_secs(5));
        assert!(slow.rx.try_recv().is_err(), "0 is alive, only slow: no second publish");
        // Without a second chance configured, nothing is ever scheduled.
        let plain = Pending::new(10);
        let _w = plain.register_on("x", deadline, Some(0)).unwrap();
        assert!(plain.inner.lock().second_chances.is_empty());
        assert_eq!(plain.partition_of("x"), None);
    }

    #[test]
    fn a_slot_is_held_past_the_deadline_until_its_handler_drops_it() {
        // The handler may still be publishing after its wait ended: it keeps its slot.
        let p = Pending::new(1);
        let now = Instant::now();
        let w = p.register("a", now + Duration::from_millis(1)).unwrap();
        assert_eq!(p.expire_due(now + Duration::from_millis(2)), 1);
        assert!(!p.is_waiting("a"));
        assert_eq!(p.register("b", later()).unwrap_err(), PendingFull, "the first handler still runs");
        assert_eq!(p.slot().unwrap_err(), PendingFull);
        assert_eq!(p.len(), 1);
        drop(w);
        assert!(p.is_empty());
        let slot = p.slot().unwrap();
        assert_eq!(p.register("c", later()).unwrap_err(), PendingFull, "a bare slot counts too");
        drop(slot);
        assert!(p.register("c", later()).is_ok());
    }
}
