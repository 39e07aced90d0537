use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

/// How long a log line may wait in the buffer before it is written out.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Bytes buffered before the logging call writes them out itself (bounds the buffer).
const CAPACITY: usize = 64 * 1024;

static PIPE: OnceLock<Arc<Shared>> = OnceLock::new();

/// Initialises env_logger (`RUST_LOG`, default `info`) with the seed-004 line shape:
/// `2026-11-21T10:58:48.123Z gateway REST request: hello world from rest id=…`.
///
/// Every line names the service that wrote it (taken from the `switchboard_<service>` crate of
/// the log target, else `process`), so the merged logs of the all-in-one or of several
/// processes can be grepped by correlation id and still tell who wrote each line.
///
/// Lines are buffered and written to stderr every 50 ms by a flusher thread (or at once by the
/// call that fills the 64 KiB buffer), not one `write(2)` per line: at info level a
/// transaction logs 13 hop lines, and a syscall for each (or, with a writer thread, a wake-up
/// for each) was most of what the hop log cost (BENCHMARKS.md, "Hop log"). Nothing is dropped;
/// a panic writes the buffer out before its message, and [`flush_logs`] does before an exit.
/// Safe to call more than once.
pub fn init_logging(process: &'static str) {
    if PIPE.get().is_some() {
        return;
    }
    let shared = Arc::new(Shared::new(Box::new(io::stderr())));
    let installed = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            let ts = buf.timestamp_millis();
            let service = service_of(record.target()).unwrap_or(process);
            if record.level() <= log::Level::Warn {
                writeln!(buf, "{ts} {service:<9} {}: {}", record.level(), record.args())
            } else {
                writeln!(buf, "{ts} {service:<9} {}", record.args())
            }
        })
        .target(env_logger::Target::Pipe(Box::new(Pipe(shared.clone()))))
        .try_init();
    if installed.is_err() || PIPE.set(shared.clone()).is_err() {
        return;
    }
    let flusher = shared.clone();
    let started = std::thread::Builder::new().name("log-flusher".into()).spawn(move || loop {
        std::thread::sleep(FLUSH_EVERY);
        flusher.flush();
    });
    if started.is_err() {
        // No flusher thread: every line is written out as it comes.
        shared.immediate();
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Never blocks: a panic inside the logger itself must still reach the default hook.
        shared.try_flush();
        previous(info);
    }));
}

/// Writes out every buffered log line now. Called before the process exits.
pub fn flush_logs() {
    if let Some(shared) = PIPE.get() {
        shared.flush();
    }
}

/// The log buffer and where it goes.
struct Shared {
    buffer: Mutex<Vec<u8>>,
    /// Held across a swap of the buffer and its write, so buffers go out in the order they filled.
    out: Mutex<Box<dyn Write + Send>>,
    /// No flusher thread could be started: every line goes out at once.
    direct: AtomicBool,
}

impl Shared {
    fn new(out: Box<dyn Write + Send>) -> Self {
        Shared {
            buffer: Mutex::new(Vec::with_capacity(CAPACITY)),
            out: Mutex::new(out),
            direct: AtomicBool::new(false),
        }
    }

    fn flush(&self) {
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

    /// [`flush`](Shared::flush) unless a lock is held (a panic while logging).
    fn try_flush(&self) {
        let (Some(mut out), Some(mut buffer)) = (self.out.try_lock(), self.buffer.try_lock()) else { return };
        let _ = out.write_all(&std::mem::take(&mut *buffer));
    }

    fn immediate(&self) {
        self.direct.store(true, Ordering::Relaxed);
    }
}

/// env_logger's target: appends each formatted line to the buffer. `flush` does nothing, since
/// env_logger flushes after every line; the flusher thread and a full buffer write it out.
struct Pipe(Arc<Shared>);

impl Write for Pipe {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let full = {
            let mut buffer = self.0.buffer.lock();
            buffer.extend_from_slice(line);
            buffer.len() >= CAPACITY || self.0.direct.load(Ordering::Relaxed)
        };
        if full {
            self.0.flush();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn service_of(target: &str) -> Option<&str> {
    let krate = target.split("::").next()?;
    krate.strip_prefix("switchboard_")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::{Pipe, Shared, CAPACITY};

    /// An output that keeps what was written, shared with the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

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
        let shared = Arc::new(Shared::new(Box::new(sink.clone())));
        let mut pipe = Pipe(shared.clone());
        pipe.write_all(b"first\n").unwrap();
        pipe.flush().unwrap(); // env_logger's flush after each line writes nothing out
        pipe.write_all(b"second\n").unwrap();
        assert!(sink.0.lock().is_empty());
        shared.flush();
        assert_eq!(&*sink.0.lock(), b"first\nsecond\n");
        shared.flush();
        assert_eq!(&*sink.0.lock(), b"first\nsecond\n", "nothing written twice");
    }

    #[test]
    fn a_full_buffer_is_written_out_by_the_call_that_fills_it() {
        let sink = Sink::default();
        let shared = Arc::new(Shared::new(Box::new(sink.clone())));
        let mut pipe = Pipe(shared.clone());
        let line = [b'x'; 1000];
        for _ in 0..(3 * CAPACITY / line.len()) {
            pipe.write_all(&line).unwrap();
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
        let shared = Arc::new(Shared::new(Box::new(sink.clone())));
        shared.immediate();
        Pipe(shared).write_all(b"now\n").unwrap();
        assert_eq!(&*sink.0.lock(), b"now\n");
    }

    #[test]
    fn service_comes_from_the_crate_of_the_target() {
        assert_eq!(super::service_of("switchboard_gateway::reply"), Some("gateway"));
        assert_eq!(super::service_of("switchboard_relay"), Some("relay"));
        assert_eq!(super::service_of("tide::server"), None);
    }
}
