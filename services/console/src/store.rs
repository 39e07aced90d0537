//! The last transactions: spans grouped by trace id, bounded three ways so memory stays flat
//! however fast spans come: at most `max_transactions` transactions, `max_spans` spans in any
//! one, and `max_transactions × SPANS_PER_TRANSACTION` spans in all. The oldest transaction
//! (first seen) is evicted first.

use std::collections::{HashMap, HashSet, VecDeque};

use parking_lot::Mutex;

use crate::otlp::{Span, TraceId};

/// Spans per transaction on average that the whole store keeps (the chain's messages have 7,
/// its jobs 5): the total budget is this times the transaction count.
const SPANS_PER_TRANSACTION: usize = 16;

/// Changed transactions remembered for the live view between two flushes; past it the
/// changes still land in the store, and the page sees them on its next list.
const MAX_DIRTY: usize = 4096;

/// One transaction: the spans of one trace id, as they arrived.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub trace_id: TraceId,
    pub spans: Vec<Span>,
    /// Spans refused because the transaction was full.
    pub dropped_spans: u64,
}

#[derive(Debug, Default)]
struct Inner {
    transactions: HashMap<TraceId, Transaction>,
    /// First-seen order, oldest first: exactly the keys of `transactions`.
    order: VecDeque<TraceId>,
    spans: usize,
    dirty: Vec<TraceId>,
    dirty_set: HashSet<TraceId>,
}

/// The bounded transaction store.
#[derive(Debug)]
pub(crate) struct Store {
    max_transactions: usize,
    max_spans: usize,
    budget: usize,
    inner: Mutex<Inner>,
}

impl Store {
    /// A store of at most `max_transactions` transactions of at most `max_spans` spans each
    /// (both at least 1).
    pub(crate) fn new(max_transactions: usize, max_spans: usize) -> Self {
        let max_transactions = max_transactions.max(1);
        Store {
            max_transactions,
            max_spans: max_spans.max(1),
            budget: max_transactions.saturating_mul(SPANS_PER_TRANSACTION),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Adds `spans`; returns how many were refused because their transaction was full.
    pub(crate) fn add(&self, spans: Vec<Span>) -> u64 {
        let mut refused = 0;
        let mut inner = self.inner.lock();
        for span in spans {
            let id = span.trace_id;
            if !inner.transactions.contains_key(&id) {
                while inner.transactions.len() >= self.max_transactions {
                    evict_oldest(&mut inner);
                }
                inner.transactions.insert(id, Transaction { trace_id: id, spans: Vec::new(), dropped_spans: 0 });
                inner.order.push_back(id);
            }
            let max_spans = self.max_spans;
            let tx = inner.transactions.get_mut(&id).expect("inserted above");
            if tx.spans.len() >= max_spans {
                tx.dropped_spans += 1;
                refused += 1;
                continue;
            }
            tx.spans.push(span);
            inner.spans += 1;
            if inner.dirty.len() < MAX_DIRTY && inner.dirty_set.insert(id) {
                inner.dirty.push(id);
            }
            // The newest transaction is never evicted for the budget: it holds at most
            // `max_spans` spans.
            while inner.spans > self.budget && inner.order.len() > 1 {
                evict_oldest(&mut inner);
            }
        }
        refused
    }

    /// A copy of the transaction `id`.
    pub(crate) fn get(&self, id: &TraceId) -> Option<Transaction> {
        self.inner.lock().transactions.get(id).cloned()
    }

    /// Calls `f` on transactions newest first until it returns `false`.
    pub(crate) fn newest_first(&self, mut f: impl FnMut(&Transaction) -> bool) {
        let inner = self.inner.lock();
        for id in inner.order.iter().rev() {
            if let Some(tx) = inner.transactions.get(id) {
                if !f(tx) {
                    return;
                }
            }
        }
    }

    /// The transactions changed since the last call, in the order they changed (evicted
    /// ones left out).
    pub(crate) fn take_changed(&self) -> Vec<Transaction> {
        let mut inner = self.inner.lock();
        let dirty = std::mem::take(&mut inner.dirty);
        inner.dirty_set.clear();
        dirty.iter().filter_map(|id| inner.transactions.get(id).cloned()).collect()
    }

    /// Transactions and spans held.
    pub(crate) fn len(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.transactions.len(), inner.spans)
    }
}

fn evict_oldest(inner: &mut Inner) {
    if let Some(old) = inner.order.pop_front() {
        if let Some(tx) = inner.transactions.remove(&old) {
            inner.spans -= tx.spans.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::otlp::{Kind, Status};

    pub(crate) fn span(trace: u8, span: u8) -> Span {
        Span {
            trace_id: [trace; 16],
            span_id: [span; 8],
            parent: None,
            name: "s".into(),
            service: Arc::from("gateway"),
            instance: Arc::from(""),
            kind: Kind::Internal,
            start: 1,
            end: 2,
            status: Status::Unset,
            status_message: String::new(),
            attributes: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn the_oldest_transaction_is_evicted_at_the_cap() {
        let store = Store::new(3, 10);
        for t in 1..=5 {
            store.add(vec![span(t, 1)]);
        }
        assert_eq!(store.len(), (3, 3));
        assert!(store.get(&[1; 16]).is_none() && store.get(&[2; 16]).is_none());
        let mut seen = Vec::new();
        store.newest_first(|tx| {
            seen.push(tx.trace_id[0]);
            true
        });
        assert_eq!(seen, [5, 4, 3]);
    }

    #[test]
    fn a_span_of_a_known_transaction_evicts_nothing() {
        let store = Store::new(2, 10);
        store.add(vec![span(1, 1), span(2, 1)]);
        store.add(vec![span(1, 2)]);
        assert_eq!(store.len(), (2, 3));
        assert_eq!(store.get(&[1; 16]).unwrap().spans.len(), 2);
    }

    #[test]
    fn a_full_transaction_refuses_and_counts_more_spans() {
        let store = Store::new(10, 2);
        let refused = store.add((1..=5).map(|s| span(7, s)).collect());
        assert_eq!(refused, 3);
        let tx = store.get(&[7; 16]).unwrap();
        assert_eq!((tx.spans.len(), tx.dropped_spans), (2, 3));
    }

    #[test]
    fn the_span_budget_evicts_old_transactions_too() {
        // 2 transactions × 16 spans of budget; each transaction may hold 20.
        let store = Store::new(2, 20);
        store.add((1..=20).map(|s| span(1, s)).collect());
        store.add((1..=20).map(|s| span(2, s)).collect());
        let (transactions, spans) = store.len();
        assert_eq!((transactions, spans), (1, 20));
        assert!(store.get(&[2; 16]).is_some());
    }

    #[test]
    fn memory_stays_flat_under_a_long_stream() {
        let store = Store::new(100, 8);
        for i in 0..100_000u32 {
            let mut s = span(0, 1);
            s.trace_id[..4].copy_from_slice(&i.to_be_bytes());
            s.trace_id[15] = 1;
            store.add(vec![s]);
            store.take_changed();
        }
        assert_eq!(store.len(), (100, 100));
    }

    #[test]
    fn changes_are_reported_once_in_order() {
        let store = Store::new(10, 10);
        store.add(vec![span(1, 1), span(2, 1), span(1, 2)]);
        let changed: Vec<u8> = store.take_changed().iter().map(|t| t.trace_id[0]).collect();
        assert_eq!(changed, [1, 2]);
        assert!(store.take_changed().is_empty());
    }
}
