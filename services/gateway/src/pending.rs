use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use switchboard_proto::Envelope;

/// Requests waiting for their reply, by correlation id. Bounded: a full map refuses new
/// requests instead of growing.
#[derive(Debug)]
pub struct Pending {
    waiting: Mutex<HashMap<String, async_channel::Sender<Envelope>>>,
    capacity: usize,
}

/// The map is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingFull;

impl Pending {
    /// A map holding at most `capacity` waiting requests.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Pending { waiting: Mutex::new(HashMap::new()), capacity })
    }

    /// Registers `id`; the returned waiter gets its reply and frees the entry when dropped
    /// (reply, timeout or caller gone alike).
    pub fn register(self: &Arc<Self>, id: &str) -> Result<Waiter, PendingFull> {
        let (tx, rx) = async_channel::bounded(1);
        let mut waiting = self.waiting.lock();
        if waiting.len() >= self.capacity {
            return Err(PendingFull);
        }
        waiting.insert(id.to_string(), tx);
        Ok(Waiter { id: id.to_string(), rx, pending: self.clone() })
    }

    /// Hands `reply` to its waiter; false when nobody waits for it (timed out, or another
    /// gateway's request).
    pub fn complete(&self, reply: Envelope) -> bool {
        let tx = self.waiting.lock().remove(&reply.id);
        match tx {
            Some(tx) => tx.try_send(reply).is_ok(),
            None => false,
        }
    }

    /// True while a request waits for the reply with `id`.
    pub fn is_waiting(&self, id: &str) -> bool {
        self.waiting.lock().contains_key(id)
    }

    /// Number of requests waiting.
    pub fn len(&self) -> usize {
        self.waiting.lock().len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One request's wait for its reply.
#[derive(Debug)]
pub struct Waiter {
    id: String,
    rx: async_channel::Receiver<Envelope>,
    pending: Arc<Pending>,
}

impl Waiter {
    /// The reply; `None` if the entry was dropped without one.
    pub async fn reply(&self) -> Option<Envelope> {
        self.rx.recv().await.ok()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.pending.waiting.lock().remove(&self.id);
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

    #[test]
    fn reply_reaches_its_own_waiter_only() {
        let p = Pending::new(10);
        let a = p.register("a").unwrap();
        let b = p.register("b").unwrap();
        assert!(p.complete(reply("b")));
        assert!(!p.complete(reply("zzz")));
        assert_eq!(smol::block_on(b.reply()).unwrap().id, "b");
        assert!(a.rx.try_recv().is_err());
    }

    #[test]
    fn capacity_is_enforced_and_dropping_frees_the_entry() {
        let p = Pending::new(1);
        let w = p.register("a").unwrap();
        assert_eq!(p.register("b").unwrap_err(), PendingFull);
        drop(w);
        assert!(p.is_empty());
        assert!(p.register("b").is_ok());
    }
}
