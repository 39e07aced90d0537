//! Server-Sent Events (`GET /api/events`): one hub, a bounded queue per client. A client
//! whose queue is full is dropped (its browser reconnects), so a slow page never holds the
//! console's memory or slows the others. Each stream ends before the server's response
//! deadline with a `retry` hint, and events carry ids: a reconnecting page sends
//! `Last-Event-ID` and gets what it missed from a short replay buffer.

use std::collections::VecDeque;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use futures_lite::{AsyncRead, Stream};
use parking_lot::Mutex;

/// Frames a client may have queued before it is dropped.
const CLIENT_QUEUE: usize = 256;
/// Frames kept for reconnecting clients.
const REPLAY: usize = 512;
/// Clients served at once; more are refused (503) until some leave.
pub(crate) const MAX_CLIENTS: usize = 64;
/// A comment sent this often keeps proxies and the browser from timing the stream out.
const PING: Duration = Duration::from_secs(15);
/// How soon a page reconnects after a stream ends, in ms.
const RETRY_MS: u32 = 500;

struct Inner {
    next_id: u64,
    clients: Vec<async_channel::Sender<Arc<str>>>,
    replay: VecDeque<(u64, Arc<str>)>,
}

/// Fans events out to every connected page.
#[derive(Clone)]
pub(crate) struct Hub {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("clients", &self.inner.lock().clients.len()).finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub { inner: Arc::new(Mutex::new(Inner { next_id: 0, clients: Vec::new(), replay: VecDeque::new() })) }
    }
}

/// `data` as SSE `data:` lines (a line break inside would end the field).
fn frame(id: u64, event: &str, data: &str) -> String {
    let mut out = format!("id: {id}\nevent: {event}\n");
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.trim_end_matches('\r'));
        out.push('\n');
    }
    out.push('\n');
    out
}

impl Hub {
    /// Sends `event` with JSON `data` to every client; drops those that cannot keep up.
    pub(crate) fn publish(&self, event: &str, data: &str) {
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let framed: Arc<str> = frame(id, event, data).into();
        inner.replay.push_back((id, framed.clone()));
        while inner.replay.len() > REPLAY {
            inner.replay.pop_front();
        }
        inner.clients.retain(|client| client.try_send(framed.clone()).is_ok());
    }

    /// Clients connected now.
    pub(crate) fn clients(&self) -> usize {
        self.inner.lock().clients.len()
    }

    /// A new client's stream, lasting `lifetime`; with `last_id`, the frames after it that
    /// are still in the replay buffer come first. `None` when [`MAX_CLIENTS`] are connected.
    pub(crate) fn subscribe(&self, last_id: Option<u64>, lifetime: Duration) -> Option<EventStream> {
        let (tx, rx) = async_channel::bounded(CLIENT_QUEUE);
        let mut inner = self.inner.lock();
        inner.clients.retain(|c| !c.is_closed());
        if inner.clients.len() >= MAX_CLIENTS {
            return None;
        }
        let mut head = format!("retry: {RETRY_MS}\n: connected\n\n").into_bytes();
        if let Some(last) = last_id {
            for (_, framed) in inner.replay.iter().filter(|(id, _)| *id > last).take(CLIENT_QUEUE) {
                head.extend_from_slice(framed.as_bytes());
            }
        }
        inner.clients.push(tx);
        Some(EventStream {
            rx: Box::pin(rx),
            pending: head,
            at: 0,
            ping: Timer::interval(PING),
            end: Timer::after(lifetime),
            ended: false,
        })
    }
}

/// One client's byte stream: queued frames, pings, and the end after its lifetime.
pub(crate) struct EventStream {
    rx: Pin<Box<async_channel::Receiver<Arc<str>>>>,
    pending: Vec<u8>,
    at: usize,
    ping: Timer,
    end: Timer,
    ended: bool,
}

impl AsyncRead for EventStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if this.at < this.pending.len() {
                let n = buf.len().min(this.pending.len() - this.at);
                buf[..n].copy_from_slice(&this.pending[this.at..this.at + n]);
                this.at += n;
                return Poll::Ready(Ok(n));
            }
            this.pending.clear();
            this.at = 0;
            if this.ended {
                return Poll::Ready(Ok(0));
            }
            if Pin::new(&mut this.end).poll(cx).is_ready() {
                this.ended = true;
                continue;
            }
            match this.rx.as_mut().poll_next(cx) {
                Poll::Ready(Some(framed)) => {
                    this.pending.extend_from_slice(framed.as_bytes());
                    // Take what else is queued: fewer, larger chunks.
                    while this.pending.len() < 64 * 1024 {
                        match this.rx.try_recv() {
                            Ok(more) => this.pending.extend_from_slice(more.as_bytes()),
                            Err(_) => break,
                        }
                    }
                    continue;
                }
                // Dropped by the hub (too slow) or the hub is gone: end the stream.
                Poll::Ready(None) => {
                    this.ended = true;
                    continue;
                }
                Poll::Pending => {}
            }
            if Pin::new(&mut this.ping).poll_next(cx).is_ready() {
                this.pending.extend_from_slice(b": ping\n\n");
                continue;
            }
            return Poll::Pending;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::AsyncReadExt;

    use super::*;

    async fn read_some(stream: &mut EventStream) -> String {
        let mut buf = vec![0u8; 64 * 1024];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn events_reach_clients_as_frames_with_ids() {
        smol::block_on(async {
            let hub = Hub::default();
            let mut s = hub.subscribe(None, Duration::from_secs(60)).unwrap();
            assert!(read_some(&mut s).await.starts_with("retry: 500\n"));
            hub.publish("transaction", "{\"a\":1}");
            assert_eq!(read_some(&mut s).await, "id: 1\nevent: transaction\ndata: {\"a\":1}\n\n");
        });
    }

    #[test]
    fn line_breaks_in_data_stay_inside_the_event() {
        assert_eq!(frame(3, "x", "a\nb"), "id: 3\nevent: x\ndata: a\ndata: b\n\n");
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_others_are_not() {
        smol::block_on(async {
            let hub = Hub::default();
            let slow = hub.subscribe(None, Duration::from_secs(60)).unwrap();
            let mut fast = hub.subscribe(None, Duration::from_secs(60)).unwrap();
            read_some(&mut fast).await;
            for i in 0..CLIENT_QUEUE + 10 {
                hub.publish("overview", &i.to_string());
                if i % 100 == 0 {
                    read_some(&mut fast).await;
                }
            }
            assert_eq!(hub.clients(), 1);
            drop(slow);
        });
    }

    #[test]
    fn a_reconnecting_client_gets_what_it_missed() {
        smol::block_on(async {
            let hub = Hub::default();
            for i in 1..=3 {
                hub.publish("job", &i.to_string());
            }
            let mut s = hub.subscribe(Some(1), Duration::from_secs(60)).unwrap();
            let text = read_some(&mut s).await;
            assert!(!text.contains("id: 1\n") && text.contains("id: 2\n") && text.contains("id: 3\n"), "{text}");
        });
    }

    #[test]
    fn a_stream_ends_after_its_lifetime() {
        smol::block_on(async {
            let hub = Hub::default();
            let mut s = hub.subscribe(None, Duration::from_millis(50)).unwrap();
            let mut all = String::new();
            s.read_to_string(&mut all).await.unwrap();
            assert!(all.starts_with("retry:"));
        });
    }

    #[test]
    fn clients_past_the_limit_are_refused() {
        let hub = Hub::default();
        let streams: Vec<_> = (0..MAX_CLIENTS).map(|_| hub.subscribe(None, Duration::from_secs(60)).unwrap()).collect();
        assert!(hub.subscribe(None, Duration::from_secs(60)).is_none());
        drop(streams);
        assert!(hub.subscribe(None, Duration::from_secs(60)).is_some());
    }
}
