use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use log::{Level, Log, Metadata, Record};

use crate::log_buffer::{LogBuffer, FLUSH_EVERY};
use crate::timestamp::StampCache;

static PIPE: OnceLock<Arc<LogBuffer>> = OnceLock::new();

/// A line buffer kept by a thread after a line longer than this is dropped, not reused.
const KEEP_LINE_CAPACITY: usize = 16 * 1024;

/// Installs the logger (`RUST_LOG`, default `info`, env_logger's syntax) with the line shape of
/// the Go example's transaction log:
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
    let shared = Arc::new(LogBuffer::new(Box::new(io::stderr())));
    // As env_logger's `Env::default().default_filter_or("info")`, parsed by env_logger's own
    // filter crate: the same `RUST_LOG` syntax, without env_logger's per-line formatter.
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = env_filter::Builder::new().parse(&spec).build();
    let max_level = filter.filter();
    let logger = HopLogger { filter, process, out: shared.clone() };
    if log::set_boxed_logger(Box::new(logger)).is_err() {
        return;
    }
    // Disabled levels then cost the `log` macros one comparison, before any formatting.
    log::set_max_level(max_level);
    if PIPE.set(shared.clone()).is_err() {
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

/// Filters as env_logger did and renders each line on the logging thread into that thread's
/// own buffer (no lock held while formatting), then appends it to the shared buffer.
struct HopLogger {
    filter: env_filter::Filter,
    process: &'static str,
    out: Arc<LogBuffer>,
}

impl Log for HopLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        let service = service_of(record.target()).unwrap_or(self.process);
        let now = SystemTime::now();
        thread_local! {
            static LINE: RefCell<LineWriter> = const { RefCell::new(LineWriter::new()) };
        }
        let reused = LINE.try_with(|line| {
            // Busy only if formatting this line's arguments logs in turn.
            let Ok(mut line) = line.try_borrow_mut() else { return false };
            if let Some(text) = line.render(now, service, record) {
                self.out.append(text);
            }
            line.trim();
            true
        });
        if !matches!(reused, Ok(true)) {
            // A nested call or a thread being torn down: a buffer of its own for this line.
            if let Some(text) = LineWriter::new().render(now, service, record) {
                self.out.append(text);
            }
        }
    }

    fn flush(&self) {
        self.out.flush();
    }
}

/// One thread's line under construction and its timestamp cache, reused line after line.
struct LineWriter {
    bytes: Vec<u8>,
    stamp: StampCache,
}

impl LineWriter {
    const fn new() -> Self {
        LineWriter { bytes: Vec::new(), stamp: StampCache::new() }
    }

    /// `{ts} {service:<9} {args}\n`, with `{level}: ` before the args at warn and error (the
    /// shape env_logger's format closure wrote). `None` if an argument failed to format: the
    /// line is dropped (`io::Write::write_fmt` would panic on the logging thread).
    fn render(&mut self, now: SystemTime, service: &str, record: &Record<'_>) -> Option<&[u8]> {
        let bytes = &mut self.bytes;
        bytes.clear();
        bytes.extend_from_slice(self.stamp.get(now));
        bytes.push(b' ');
        bytes.extend_from_slice(service.as_bytes());
        // `{:<9}` pads by chars, not bytes.
        let width = service.chars().count();
        bytes.resize(bytes.len() + 9usize.saturating_sub(width), b' ');
        bytes.push(b' ');
        if record.level() <= Level::Warn {
            bytes.extend_from_slice(record.level().as_str().as_bytes());
            bytes.extend_from_slice(b": ");
        }
        // A message without arguments is copied, not run through `core::fmt`.
        match record.args().as_str() {
            Some(text) => bytes.extend_from_slice(text.as_bytes()),
            None => fmt::write(&mut Utf8Bytes(bytes), *record.args()).ok()?,
        }
        bytes.push(b'\n');
        Some(bytes.as_slice())
    }

    /// Gives back the memory of an unusually long line rather than keeping it per thread.
    fn trim(&mut self) {
        if self.bytes.capacity() > KEEP_LINE_CAPACITY {
            self.bytes = Vec::new();
        }
    }
}

/// `fmt::Write` straight into the line's bytes (no intermediate `String`).
struct Utf8Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Utf8Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn service_of(target: &str) -> Option<&str> {
    let krate = target.split("::").next()?;
    krate.strip_prefix("switchboard_")
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use log::{Level, Log, Record};

    use super::{HopLogger, LineWriter};
    use crate::log_buffer::tests::Sink;
    use crate::log_buffer::LogBuffer;

    const TS: &str = "2026-11-21T10:58:48.123Z";

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(1_795_258_728_123_456_789)
    }

    /// The line as env_logger's format closure wrote it (`ts` as `buf.timestamp_millis()`).
    fn env_logger_line(ts: &str, service: &str, record: &Record<'_>) -> String {
        if record.level() <= Level::Warn {
            format!("{ts} {service:<9} {}: {}\n", record.level(), record.args())
        } else {
            format!("{ts} {service:<9} {}\n", record.args())
        }
    }

    fn same_as_env_logger(level: Level, service: &str, args: fmt::Arguments<'_>) {
        let record = Record::builder().level(level).target("switchboard_gateway::routes").args(args).build();
        let mut writer = LineWriter::new();
        let ours = String::from_utf8(writer.render(now(), service, &record).unwrap().to_vec()).unwrap();
        assert_eq!(ours, env_logger_line(TS, service, &record));
    }

    #[test]
    fn lines_are_byte_identical_to_env_loggers_format() {
        let id = "0b6f2a8e-5f7e-4c1d-9a43-3e0c2f1d7b55";
        let body = "hello world from rest";
        same_as_env_logger(Level::Info, "gateway", format_args!("REST request: {body} id={id}"));
        same_as_env_logger(Level::Info, "processor", format_args!("gRPC Server: {body} id={id}"));
        same_as_env_logger(Level::Info, "relay", format_args!("{}", "#".repeat(92)));
        same_as_env_logger(Level::Info, "gateway", format_args!("reply subscription ended"));
        same_as_env_logger(
            Level::Warn,
            "gateway",
            format_args!("no reply within {:?} id={id}", Duration::from_secs(2)),
        );
        same_as_env_logger(Level::Error, "switchboard", format_args!("a name longer than the column"));
        same_as_env_logger(Level::Debug, "wörker", format_args!("padded by chars: {}", 1.5));
        same_as_env_logger(Level::Info, "", format_args!(""));
    }

    #[test]
    fn an_argument_that_fails_to_format_prints_no_line() {
        struct Broken;
        impl fmt::Display for Broken {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Err(fmt::Error)
            }
        }
        let rendered =
            LineWriter::new().render(now(), "gateway", &line(Level::Info, "", format_args!("x {}", Broken))).is_some();
        assert!(!rendered);
    }

    fn line<'a>(level: Level, target: &'a str, args: fmt::Arguments<'a>) -> Record<'a> {
        Record::builder().level(level).target(target).args(args).build()
    }

    #[test]
    fn the_logger_filters_names_the_service_and_buffers_the_line() {
        let sink = Sink::default();
        let out = Arc::new(LogBuffer::new(Box::new(sink.clone())));
        let logger = HopLogger {
            filter: env_filter::Builder::new().parse("warn,switchboard_relay=info").build(),
            process: "switchboard",
            out: out.clone(),
        };
        logger.log(&line(Level::Info, "switchboard_relay::handler", format_args!("KAFKA Consumer: hi id=1")));
        logger.log(&line(Level::Info, "switchboard_gateway::routes", format_args!("filtered out")));
        logger.log(&line(Level::Warn, "rdkafka::client", format_args!("broker down")));
        assert!(sink.0.lock().is_empty(), "buffered until a flush");
        logger.flush();
        let text = String::from_utf8(sink.0.lock().clone()).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| &l[crate::timestamp::LEN..]).collect();
        assert_eq!(lines, [" relay     KAFKA Consumer: hi id=1", " switchboard WARN: broker down"]);
    }

    #[test]
    fn a_long_line_does_not_keep_its_memory() {
        let mut writer = LineWriter::new();
        let long = "x".repeat(100_000);
        let len = writer.render(now(), "gateway", &line(Level::Info, "", format_args!("{long}"))).unwrap().len();
        assert_eq!(len, TS.len() + 11 + 100_000 + 1);
        writer.trim();
        assert_eq!(writer.bytes.capacity(), 0);
    }

    #[test]
    fn service_comes_from_the_crate_of_the_target() {
        assert_eq!(super::service_of("switchboard_gateway::reply"), Some("gateway"));
        assert_eq!(super::service_of("switchboard_relay"), Some("relay"));
        assert_eq!(super::service_of("tide::server"), None);
    }
}
