//! State-change events, delivered to callbacks and to bounded channels.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::breaker::State;

/// A state transition of a breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why it changed.
    pub reason: Reason,
    /// When, on the breaker's clock.
    pub at: Duration,
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// The failure rate (percent) of the window, or of the probes, reached the threshold.
    FailureRate(f32),
    /// The slow-call rate (percent) of the window, or of the probes, reached the threshold.
    SlowCallRate(f32),
    /// The open wait elapsed; probes may go through.
    WaitElapsed,
    /// Every probe finished and the probes' rates are under the thresholds.
    ProbesPassed,
    /// [`CircuitBreaker::force_open`](crate::CircuitBreaker::force_open) was called.
    Forced,
    /// [`CircuitBreaker::reset`](crate::CircuitBreaker::reset) was called.
    Reset,
}

type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Clone)]
enum Listener {
    Callback(Callback),
    Channel(async_channel::Sender<Event>),
}

/// The listeners of one breaker.
#[derive(Default)]
pub(crate) struct Listeners {
    list: RwLock<Vec<Listener>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners").field("count", &self.list.read().len()).finish()
    }
}

impl Listeners {
    pub(crate) fn add_callback(&self, callback: impl Fn(&Event) + Send + Sync + 'static) {
        self.list.write().push(Listener::Callback(Arc::new(callback)));
    }

    pub(crate) fn subscribe(&self, capacity: usize) -> async_channel::Receiver<Event> {
        let (tx, rx) = async_channel::bounded(capacity.max(1));
        self.list.write().push(Listener::Channel(tx));
        rx
    }

    /// Hands `event` to every listener. The list is copied first so a callback may add
    /// listeners or read the breaker without deadlocking.
    pub(crate) fn emit(&self, event: Event) {
        let list = self.list.read().clone();
        if list.is_empty() {
            return;
        }
        let mut closed = false;
        for listener in &list {
            match listener {
                Listener::Callback(f) => f(&event),
                Listener::Channel(tx) => match tx.try_send(event) {
                    Ok(()) => {}
                    Err(async_channel::TrySendError::Full(_)) => {
                        self.dropped.fetch_add(1, Relaxed);
                    }
                    Err(async_channel::TrySendError::Closed(_)) => closed = true,
                },
            }
        }
        if closed {
            self.list.write().retain(|l| !matches!(l, Listener::Channel(tx) if tx.is_closed()));
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event { from: State::Closed, to: State::Open, reason: Reason::Forced, at: Duration::ZERO }
    }

    #[test]
    fn full_channels_count_dropped_events_and_closed_ones_are_removed() {
        let listeners = Listeners::default();
        let rx = listeners.subscribe(1);
        listeners.emit(event());
        listeners.emit(event());
        assert_eq!(rx.try_recv(), Ok(event()));
        assert_eq!(listeners.dropped(), 1);
        drop(rx);
        listeners.emit(event());
        assert!(listeners.list.read().is_empty());
    }
}
