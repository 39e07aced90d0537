//! Where finished log lines wait: one shared buffer, written to stderr every 50 ms by the
//! `log-flusher` thread or at once by the line that fills 64 KiB, not one `write(2)` per line:
//! the hop log at info cost +29 % CPU over warn with a write per line, +11 % (114 → 126 µs per
//! transaction) with this buffer (BENCHMARKS.md, "Changes tried").

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// How long a log line may wait in the buffer before it is written out.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Bytes buffered before the logging call writes them out itself (bounds the buffer).
pub(crate) const CAPACITY: usize = 64 * 1024;

/// The log buffer and where it goes.
pub(crate) struct LogBuffer {
    buffer: Mutex<Vec<u8>>,
    /// Held across a swap of the buffer and its write, so buffers go out in the order they filled.
    out: Mutex<Box<dyn Write + Send>>,
    /// No flusher thread could be started: every line goes out at once.
    direct: AtomicBool,
}

impl LogBuffer {
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Self {
        LogBuffer {
            buffer: Mutex::new(Vec::with_capacity(CAPACITY)),
            out: Mutex::new(out),
            direct: AtomicBool::new(false),
        }
    }

    /// Appends finished lines (a memcpy under the lock); writes the buffer out if that filled it.
    pub(crate) fn append(&self, lines: &[u8]) {
        let full = {
            let mut buffer = self.buffer.lock();
            buffer.extend_from_slice(lines);
            buffer.len() >= CAPACITY || self.direct.load(Ordering::Relaxed)
        };
        if full {
            self.flush();
        }
    }

    pub(crate) fn flush(&self) {
        let mut out = self.out.lock();
        let full = {
            let mut buffer = self.buffer.lock();
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(CAPACITY))
        };
        // Nowhere to report a failing stderr; the lines are gone either way.
        let _ = out.write_all(&full);
    }

    /// [`flush`](LogBuffer::flush) unless a lock is held (a panic while logging).
    pub(crate) fn try_flush(&self) {
        let (Some(mut out), Some(mut buffer)) = (self.out.try_lock(), self.buffer.try_lock()) else { return };
        let _ = out.write_all(&std::mem::take(&mut *buffer));
    }

    pub(crate) fn immediate(&self) {
        self.direct.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::{LogBuffer, CAPACITY};

    /// An output that keeps what was written, shared with the test.
    #[derive(Clone, Default)]
    pub(crate) struct Sink(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_wait_in_the_buffer_until_a_flush_writes_them_out_in_order() {
        let sink = Sink::default();
        let shared = LogBuffer::new(Box::new(sink.clone()));
        shared.append(b"first\n");
        shared.append(b"second\n");
        assert!(sink.0.lock().is_empty());
        shared.flush();
        assert_eq!(&*sink.0.lock(), b"first\nsecond\n");
        shared.flush();
        assert_eq!(&*sink.0.lock(), b"first\nsecond\n", "nothing written twice");
    }

    #[test]
    fn a_full_buffer_is_written_out_by_the_call_that_fills_it() {
        let sink = Sink::default();
        let shared = LogBuffer::new(Box::new(sink.clone()));
        let line = [b'x'; 1000];
        for _ in 0..(3 * CAPACITY / line.len()) {
            shared.append(&line);
            assert!(shared.buffer.lock().len() < CAPACITY, "the buffer stays bounded");
        }
        let written = sink.0.lock().len();
        assert!(written >= 2 * CAPACITY, "{written} bytes out without any flusher");
        shared.flush();
        assert_eq!(sink.0.lock().len(), 3 * CAPACITY / line.len() * line.len(), "every byte, once");
    }

    #[test]
    fn without_a_flusher_every_line_goes_out_at_once() {
        let sink = Sink::default();
        let shared = LogBuffer::new(Box::new(sink.clone()));
        shared.immediate();
        shared.append(b"now\n");
        assert_eq!(&*sink.0.lock(), b"now\n");
    }

    #[test]
    fn try_flush_writes_out_what_is_buffered() {
        let sink = Sink::default();
        let shared = LogBuffer::new(Box::new(sink.clone()));
        shared.append(b"before the panic message\n");
        shared.try_flush();
        assert_eq!(&*sink.0.lock(), b"before the panic message\n");
    }
}
