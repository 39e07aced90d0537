use std::io::{BufWriter, Write};
use std::sync::Mutex;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// The writer thread's guard: dropping it writes out every line still queued. Taken by
/// [`flush_logs`]; statics are never dropped, so a process must call that before it exits.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Lines queued for the writer thread before a logging call waits for it (never drops one).
const QUEUED_LINES: usize = 65_536;

/// Initialises env_logger (`RUST_LOG`, default `info`) with the seed-004 line shape:
/// `2026-11-21T10:58:48.123Z gateway REST request: hello world from rest id=…`.
///
/// Every line names the service that wrote it (taken from the `switchboard_<service>` crate of
/// the log target, else `process`), so the merged logs of the all-in-one or of several
/// processes can be grepped by correlation id and still tell who wrote each line.
///
/// Lines go to stderr through a writer thread with a buffer, written out whenever its queue
/// runs dry: at info level a transaction logs 13 hop lines, and a `write(2)` for each one on
/// the request's own thread was the largest part of what the hop log cost (BENCHMARKS.md,
/// "Hop log"). The queue is bounded and lossless: a logger that outruns stderr waits.
/// Call [`flush_logs`] before the process exits. Safe to call more than once.
pub fn init_logging(process: &'static str) {
    let mut writer = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    if writer.is_some() {
        return;
    }
    let (pipe, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
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
        .target(env_logger::Target::Pipe(Box::new(pipe)))
        .try_init();
    if installed.is_ok() {
        *writer = Some(guard);
    }
}

/// Writes out every log line still queued and stops the writer thread; later lines are lost.
/// Called at the end of `main` and before any `process::exit`.
pub fn flush_logs() {
    let guard = WRITER.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(guard);
}

fn service_of(target: &str) -> Option<&str> {
    let krate = target.split("::").next()?;
    krate.strip_prefix("switchboard_")
}

#[cfg(test)]
mod tests {
    #[test]
    fn service_comes_from_the_crate_of_the_target() {
        assert_eq!(super::service_of("switchboard_gateway::reply"), Some("gateway"));
        assert_eq!(super::service_of("switchboard_relay"), Some("relay"));
        assert_eq!(super::service_of("tide::server"), None);
    }
}
