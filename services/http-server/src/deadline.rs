//! A connection wrapper whose reads and writes fail with `TimedOut` past a deadline.
//!
//! async-h1 bounds only the wait for a request head (60 s, not configurable in 2.3), and
//! reads bodies with no bound at all. The serve loop moves this wrapper's deadlines at each
//! phase of a request instead: head, body, response. The deadline is a total time, not an idle
//! time, so a client trickling a byte a second cannot keep a connection slot.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{AsyncRead, AsyncWrite, Future};
use parking_lot::Mutex;

#[derive(Debug, Default)]
struct Deadlines {
    read: Option<Instant>,
    write: Option<Instant>,
    /// The first bytes read since [`Deadline::head_within`], while a head is awaited.
    head: Option<Vec<u8>>,
}

/// Bytes of a request head kept for answering a head the parser refused.
const HEAD_KEPT: usize = 1024;

/// `io` with shared read and write deadlines. Clones (async-h1 keeps a reader and a writer
/// clone) share the deadlines; each clone has its own timer.
#[derive(Debug)]
pub(crate) struct Deadline<IO> {
    io: IO,
    deadlines: Arc<Mutex<Deadlines>>,
    read_timer: Option<(Instant, Timer)>,
    write_timer: Option<(Instant, Timer)>,
}

impl<IO: Clone> Clone for Deadline<IO> {
    fn clone(&self) -> Self {
        Deadline { io: self.io.clone(), deadlines: self.deadlines.clone(), read_timer: None, write_timer: None }
    }
}

impl<IO> Deadline<IO> {
    pub(crate) fn new(io: IO) -> Self {
        Deadline { io, deadlines: Arc::default(), read_timer: None, write_timer: None }
    }

    /// Reads must be done within `timeout` from now; writes are not bounded (none are due).
    pub(crate) fn read_within(&self, timeout: Duration) {
        let mut d = self.deadlines.lock();
        d.read = Some(Instant::now() + timeout);
        d.write = None;
        d.head = None;
    }

    /// Like [`read_within`](Self::read_within) for a request head, whose first bytes are kept
    /// until the next phase (see [`head`](Self::head)).
    pub(crate) fn head_within(&self, timeout: Duration) {
        self.read_within(timeout);
        self.deadlines.lock().head = Some(Vec::new());
    }

    /// The first bytes read since [`head_within`](Self::head_within).
    pub(crate) fn head(&self) -> Vec<u8> {
        self.deadlines.lock().head.clone().unwrap_or_default()
    }

    /// Writes must be done within `timeout` from now; the read deadline stays.
    pub(crate) fn write_within(&self, timeout: Duration) {
        self.deadlines.lock().write = Some(Instant::now() + timeout);
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "client too slow: request timeout")
}

/// `Ready(Err)` once `deadline` has passed; else arms `timer` so the task wakes by then.
///
/// A timer armed for an earlier deadline is kept, and re-armed when it fires early: the
/// deadline moves at every request of a keep-alive connection, and arming a timer wakes the
/// reactor's thread, so a busy connection re-arms about once per timeout, not per request.
fn check(deadline: Option<Instant>, timer: &mut Option<(Instant, Timer)>, cx: &mut Context<'_>) -> Poll<io::Error> {
    let Some(at) = deadline else { return Poll::Pending };
    loop {
        if Instant::now() >= at {
            return Poll::Ready(timed_out());
        }
        let armed = match &mut *timer {
            Some((armed, t)) if *armed <= at => t,
            slot => &mut slot.insert((at, Timer::at(at))).1,
        };
        if Pin::new(armed).poll(cx).is_pending() {
            return Poll::Pending;
        }
        // Fired: at `at` (timed out above), or at an earlier deadline (armed anew above).
        *timer = None;
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Deadline<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let deadline = this.deadlines.lock().read;
        // Checked before reading: a client streaming fast but without end is bounded too.
        if deadline.is_some_and(|at| Instant::now() >= at) {
            return Poll::Ready(Err(timed_out()));
        }
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => check(deadline, &mut this.read_timer, cx).map(Err),
            Poll::Ready(Ok(n)) => {
                if let Some(head) = this.deadlines.lock().head.as_mut() {
                    let room = HEAD_KEPT.saturating_sub(head.len()).min(n);
                    head.extend_from_slice(&buf[..room]);
                }
                Poll::Ready(Ok(n))
            }
            ready => ready,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Deadline<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let deadline = this.deadlines.lock().write;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => check(deadline, &mut this.write_timer, cx).map(Err),
            ready => ready,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let deadline = this.deadlines.lock().write;
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => check(deadline, &mut this.write_timer, cx).map(Err),
            ready => ready,
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncReadExt;

    /// A reader that never has data.
    #[derive(Clone)]
    struct Silent;
    impl AsyncRead for Silent {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    /// A reader that always has data.
    #[derive(Clone)]
    struct Endless;
    impl AsyncRead for Endless {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            buf.fill(b'x');
            Poll::Ready(Ok(buf.len()))
        }
    }

    #[test]
    fn a_silent_peer_times_out_at_the_deadline() {
        smol::block_on(async {
            let mut io = Deadline::new(Silent);
            io.read_within(Duration::from_millis(50));
            let err = io.read(&mut [0; 8]).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn a_peer_that_never_stops_sending_times_out_too() {
        smol::block_on(async {
            let io = Deadline::new(Endless);
            io.read_within(Duration::from_millis(50));
            let mut reader = io.clone();
            let mut read = 0;
            let err = loop {
                match reader.read(&mut [0; 1024]).await {
                    Ok(n) => read += n,
                    Err(e) => break e,
                }
                async_io::Timer::after(Duration::from_millis(1)).await;
            };
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(read > 0, "data flowed until the deadline");
        });
    }

    #[test]
    fn a_deadline_moved_later_holds_past_the_earlier_one_and_still_ends_at_the_new_one() {
        smol::block_on(async {
            let io = Deadline::new(Silent);
            let mut reader = io.clone();
            io.read_within(Duration::from_millis(20));
            let mut buf = [0; 8];
            let mut read = reader.read(&mut buf);
            // Arms the timer for the first deadline.
            assert!(futures_lite::future::poll_once(&mut read).await.is_none());
            io.read_within(Duration::from_secs(60));
            async_io::Timer::after(Duration::from_millis(100)).await;
            // The first deadline's timer has fired: the read is pending still, not timed out.
            assert!(futures_lite::future::poll_once(&mut read).await.is_none());
            io.read_within(Duration::from_millis(20));
            assert_eq!(read.await.unwrap_err().kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn without_a_deadline_reads_pass_through() {
        smol::block_on(async {
            let mut io = Deadline::new(Endless);
            assert_eq!(io.read(&mut [0; 4]).await.unwrap(), 4);
        });
    }
}
