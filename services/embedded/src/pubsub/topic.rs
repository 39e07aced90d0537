use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use event_listener::Event;
use switchboard_ports::Message;

use super::group::Group;
use super::lock;

/// One topic: a fixed set of partition logs and the consumer groups reading them.
pub(super) struct Topic {
    pub(super) name: Arc<str>,
    pub(super) partitions: Box<[Partition]>,
    /// Notified after appends; every member of every group of the topic listens to it only
    /// while idle, so a busy consumer costs publishers nothing but an atomic load.
    pub(super) appended: Event,
    pub(super) groups: Mutex<HashMap<Box<str>, Arc<Group>>>,
    /// Notified when a group commits or a member leaves: room may have been made for
    /// publishers waiting on a full partition.
    pub(super) freed: Arc<Event>,
    round_robin: AtomicUsize,
}

/// One partition: an append-only log trimmed at the retention limit, but never below what a
/// subscribed group has yet to commit.
pub(super) struct Partition {
    pub(super) log: Mutex<Log>,
}

pub(super) struct Log {
    /// Offset of `messages[0]`.
    pub(super) base: i64,
    pub(super) messages: VecDeque<Message>,
}

impl Log {
    /// Offset the next appended message gets.
    pub(super) fn end(&self) -> i64 {
        self.base + self.messages.len() as i64
    }
}

impl Topic {
    pub(super) fn new(name: &str, partitions: i32) -> Self {
        let partitions = (0..partitions.max(1))
            .map(|_| Partition { log: Mutex::new(Log { base: 0, messages: VecDeque::new() }) })
            .collect();
        Topic {
            name: name.into(),
            partitions,
            appended: Event::new(),
            groups: Mutex::new(HashMap::new()),
            freed: Arc::new(Event::new()),
            round_robin: AtomicUsize::new(0),
        }
    }

    pub(super) fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Appends `message` and returns its partition and offset; hands the message back when
    /// its partition holds `retention` messages that a subscribed group has not committed yet
    /// (the caller waits for room: dropping them would lose work still owed).
    pub(super) fn append(&self, message: Message, retention: usize) -> Result<(i32, i64), Message> {
        let n = self.partitions.len();
        let p = match &message.key {
            Some(key) => (fnv1a(key) % n as u64) as usize,
            None => self.round_robin.fetch_add(1, Ordering::Relaxed) % n,
        };
        let partition = &self.partitions[p].log;
        let offset = {
            let mut log = lock(partition);
            if log.messages.len() < retention {
                let offset = log.end();
                log.messages.push_back(message);
                offset
            } else {
                // At the limit: the floor takes the group locks, which members take before the
                // log lock, so it is read with the log unlocked (a stale floor only keeps more).
                drop(log);
                let floor = self.owed_floor(p);
                let mut log = lock(partition);
                // Trim an eighth of the retention at once where the floor allows, so the floor
                // (group locks) is read once per retention/8 appends, not on every one.
                let low = retention - retention / 8;
                while log.messages.len() >= low && floor.is_none_or(|f| log.base < f) {
                    log.messages.pop_front();
                    log.base += 1;
                }
                if log.messages.len() >= retention {
                    return Err(message);
                }
                let offset = log.end();
                log.messages.push_back(message);
                offset
            }
        };
        // Wakes idle members only; a no-op (one atomic load) when all are busy or notified.
        self.appended.notify(usize::MAX);
        Ok((p as i32, offset))
    }

    /// Lowest committed offset of partition `p` over the groups with members: below it,
    /// nothing is owed to anyone. `None` when no group is subscribed.
    fn owed_floor(&self, p: usize) -> Option<i64> {
        let groups = lock(&self.groups);
        groups.values().filter(|g| g.member_count() > 0).map(|g| g.committed[p].load(Ordering::Acquire)).min()
    }

    /// Log end offset per partition.
    pub(super) fn end_offsets(&self) -> Vec<i64> {
        self.partitions.iter().map(|p| lock(&p.log).end()).collect()
    }

    /// Oldest retained offset per partition.
    pub(super) fn start_offsets(&self) -> Vec<i64> {
        self.partitions.iter().map(|p| lock(&p.log).base).collect()
    }
}

/// FNV-1a: stable across runs and Rust releases, unlike `DefaultHasher`, so a key keeps its
/// partition for the life of the topic.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_partition_and_retention_trims_the_head() {
        let topic = Topic::new("t", 8);
        let (p1, o1) = topic.append(Message::new("a").with_key("k"), 2).unwrap();
        let (p2, o2) = topic.append(Message::new("b").with_key("k"), 2).unwrap();
        let (p3, o3) = topic.append(Message::new("c").with_key("k"), 2).unwrap();
        assert_eq!((p1, p2, p3), (p1, p1, p1));
        assert_eq!((o1, o2, o3), (0, 1, 2));
        let log = lock(&topic.partitions[p1 as usize].log);
        assert_eq!(log.base, 1);
        assert_eq!(log.end(), 3);
        assert_eq!(log.messages[0].payload, b"b");
    }

    #[test]
    fn keyless_messages_spread_over_partitions() {
        let topic = Topic::new("t", 3);
        let parts: Vec<i32> = (0..6).map(|i| topic.append(Message::new(vec![i]), 10).unwrap().0).collect();
        let mut seen = parts.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, vec![0, 1, 2], "round robin over {parts:?}");
    }
}
