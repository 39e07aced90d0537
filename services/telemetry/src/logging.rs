use std::io::Write;

/// Initialises env_logger (`RUST_LOG`, default `info`) with the seed-004 line shape:
/// `2026-11-21T10:58:48.123Z gateway REST request: hello world from rest id=…`.
///
/// Every line names the service that wrote it (taken from the `switchboard_<service>` crate of
/// the log target, else `process`), so the merged logs of the all-in-one or of several
/// processes can be grepped by correlation id and still tell who wrote each line.
/// Safe to call more than once.
pub fn init_logging(process: &'static str) {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            let ts = buf.timestamp_millis();
            let service = service_of(record.target()).unwrap_or(process);
            if record.level() <= log::Level::Warn {
                writeln!(buf, "{ts} {service:<9} {}: {}", record.level(), record.args())
            } else {
                writeln!(buf, "{ts} {service:<9} {}", record.args())
            }
        })
        .try_init();
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
