//! Breaker settings as flags: one struct per breaker, each setting a typed flag with its
//! environment fallback (`{PREFIX}_FAILURE_RATE`, …), so `--help` shows them all and clap
//! refuses a bad value (naming the flag) before the builder sees it.

use std::ops::RangeInclusive;

use switchboard_resilience::{Config, ConfigError, SlidingWindow, MAX_HALF_OPEN_CALLS, MAX_WINDOW};

/// Declares a `clap::Args` struct of one breaker's settings: `--{flag}-failure-rate` with
/// `{env}_FAILURE_RATE`, and so on for every setting of [`Config`]. Unset settings keep the
/// breaker defaults; clap refuses a value of the wrong type or out of range.
///
/// ```
/// use clap::Parser;
///
/// switchboard_service::breaker_args!(
///     /// The breaker around orders calls.
///     OrdersBreaker, env = "ORDERS_BREAKER", flag = "orders-breaker"
/// );
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     breaker: OrdersBreaker,
/// }
///
/// let cli = Cli::try_parse_from(["t", "--orders-breaker-failure-rate", "20"]).unwrap();
/// assert_eq!(cli.breaker.config().unwrap().failure_rate(), 20.0);
/// let err = Cli::try_parse_from(["t", "--orders-breaker-window", "lots"]).err().unwrap().to_string();
/// assert!(err.contains("invalid value 'lots' for '--orders-breaker-window <N>'"), "{err}");
/// ```
#[macro_export]
macro_rules! breaker_args {
    ($(#[$doc:meta])* $name:ident, env = $env:literal, flag = $flag:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $name {
            /// Failure rate in percent, (0, 100], that opens the breaker [default: 50].
            #[arg(id = concat!($env, "_FAILURE_RATE"), long = concat!($flag, "-failure-rate"),
                env = concat!($env, "_FAILURE_RATE"), value_name = "PERCENT", value_parser = $crate::breaker::percent)]
            pub failure_rate: Option<f32>,
            /// Slow-call rate in percent, (0, 100], that opens the breaker [default: 100].
            #[arg(id = concat!($env, "_SLOW_CALL_RATE"), long = concat!($flag, "-slow-call-rate"),
                env = concat!($env, "_SLOW_CALL_RATE"), value_name = "PERCENT", value_parser = $crate::breaker::percent)]
            pub slow_call_rate: Option<f32>,
            /// A call longer than this is slow [default: 5000].
            #[arg(id = concat!($env, "_SLOW_CALL_MS"), long = concat!($flag, "-slow-call-ms"),
                env = concat!($env, "_SLOW_CALL_MS"), value_name = "MS")]
            pub slow_call_ms: Option<u64>,
            /// Window size: calls, or seconds for a time window [default: 100].
            #[arg(id = concat!($env, "_WINDOW"), long = concat!($flag, "-window"),
                env = concat!($env, "_WINDOW"), value_name = "N",
                value_parser = clap::value_parser!(u32).range($crate::breaker::WINDOW_RANGE))]
            pub window: Option<u32>,
            /// Window kind [default: count].
            #[arg(id = concat!($env, "_WINDOW_KIND"), long = concat!($flag, "-window-kind"),
                env = concat!($env, "_WINDOW_KIND"), value_name = "KIND", ignore_case = true)]
            pub window_kind: Option<$crate::WindowKind>,
            /// Calls in the window before the rates count [default: 20].
            #[arg(id = concat!($env, "_MIN_CALLS"), long = concat!($flag, "-min-calls"),
                env = concat!($env, "_MIN_CALLS"), value_name = "N",
                value_parser = clap::value_parser!(u32).range(1..))]
            pub min_calls: Option<u32>,
            /// Milliseconds open before probing [default: 5000].
            #[arg(id = concat!($env, "_WAIT_OPEN_MS"), long = concat!($flag, "-wait-open-ms"),
                env = concat!($env, "_WAIT_OPEN_MS"), value_name = "MS")]
            pub wait_open_ms: Option<u64>,
            /// Probe calls in half-open [default: 10].
            #[arg(id = concat!($env, "_HALF_OPEN_CALLS"), long = concat!($flag, "-half-open-calls"),
                env = concat!($env, "_HALF_OPEN_CALLS"), value_name = "N",
                value_parser = clap::value_parser!(u32).range($crate::breaker::HALF_OPEN_RANGE))]
            pub half_open_calls: Option<u32>,
        }

        impl $name {
            /// The breaker settings these flags describe, fed to the builder as they are.
            pub fn config(&self) -> Result<$crate::BreakerConfig, $crate::BreakerConfigError> {
                $crate::breaker::BreakerFlags {
                    failure_rate: self.failure_rate,
                    slow_call_rate: self.slow_call_rate,
                    slow_call_ms: self.slow_call_ms,
                    window: self.window,
                    window_kind: self.window_kind,
                    min_calls: self.min_calls,
                    wait_open_ms: self.wait_open_ms,
                    half_open_calls: self.half_open_calls,
                }
                .config($env)
            }
        }
    };
}

/// What a breaker's window counts: the last N calls, or the calls of the last N seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WindowKind {
    /// The last N recorded calls.
    Count,
    /// Calls recorded in the last N seconds.
    Time,
}

#[doc(hidden)]
pub const WINDOW_RANGE: RangeInclusive<i64> = 1..=MAX_WINDOW as i64;
#[doc(hidden)]
pub const HALF_OPEN_RANGE: RangeInclusive<i64> = 1..=MAX_HALF_OPEN_CALLS as i64;

/// A rate in percent, `(0, 100]`.
#[doc(hidden)]
pub fn percent(value: &str) -> Result<f32, String> {
    let rate: f32 = value.trim().parse().map_err(|_| "not a percentage".to_string())?;
    if rate > 0.0 && rate <= 100.0 {
        Ok(rate)
    } else {
        Err("out of range (0, 100]".to_string())
    }
}

/// The typed values of one breaker's flags; what [`breaker_args!`](crate::breaker_args) structs
/// hand to the builder.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct BreakerFlags {
    pub failure_rate: Option<f32>,
    pub slow_call_rate: Option<f32>,
    pub slow_call_ms: Option<u64>,
    pub window: Option<u32>,
    pub window_kind: Option<WindowKind>,
    pub min_calls: Option<u32>,
    pub wait_open_ms: Option<u64>,
    pub half_open_calls: Option<u32>,
}

impl BreakerFlags {
    /// The settings, unset ones at their defaults; the builder's own checks (combinations)
    /// name the breaker `prefix` in their error.
    pub fn config(self, prefix: &str) -> Result<Config, ConfigError> {
        use std::time::Duration;
        let mut b = Config::builder();
        if let Some(v) = self.failure_rate {
            b = b.failure_rate(v);
        }
        if let Some(v) = self.slow_call_rate {
            b = b.slow_call_rate(v);
        }
        if let Some(ms) = self.slow_call_ms {
            b = b.slow_call_duration(Duration::from_millis(ms));
        }
        if let Some(ms) = self.wait_open_ms {
            b = b.wait_open(Duration::from_millis(ms));
        }
        if let Some(n) = self.min_calls {
            b = b.min_calls(n);
        }
        if let Some(n) = self.half_open_calls {
            b = b.half_open_calls(n);
        }
        let default = match Config::default().window() {
            SlidingWindow::Count(n) | SlidingWindow::Time(n) => n,
        };
        let size = self.window.unwrap_or(default);
        b = b.window(match self.window_kind.unwrap_or(WindowKind::Count) {
            WindowKind::Count => SlidingWindow::Count(size),
            WindowKind::Time => SlidingWindow::Time(size),
        });
        b.build().map_err(|e| e.with_prefix(prefix))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use switchboard_resilience::SlidingWindow;

    crate::breaker_args!(
        /// A breaker for the tests.
        TestBreaker, env = "TEST_BREAKER", flag = "test-breaker"
    );

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        breaker: TestBreaker,
    }

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map_err(|e| e.to_string())
    }

    #[test]
    fn no_flags_give_the_defaults() {
        assert_eq!(parse(&[]).unwrap().breaker.config().unwrap(), switchboard_resilience::Config::default());
    }

    /// The flags and the resilience crate's environment reader (for library users) read the
    /// same settings into the same config.
    #[test]
    fn every_flag_is_read_as_the_environment_reader_reads_it() {
        let settings = [
            ("FAILURE_RATE", "25.5"),
            ("SLOW_CALL_RATE", "80"),
            ("SLOW_CALL_MS", "1500"),
            ("WAIT_OPEN_MS", "2000"),
            ("WINDOW", "30"),
            ("WINDOW_KIND", "Time"),
            ("MIN_CALLS", "7"),
            ("HALF_OPEN_CALLS", "3"),
        ];
        let flags: Vec<String> = settings
            .iter()
            .map(|(name, value)| format!("--test-breaker-{}={value}", name.to_lowercase().replace('_', "-")))
            .collect();
        let from_flags =
            parse(&flags.iter().map(String::as_str).collect::<Vec<_>>()).unwrap().breaker.config().unwrap();
        let from_env = switchboard_resilience::Config::from_lookup("CB", |var| {
            settings.iter().find(|(name, _)| var.strip_prefix("CB_") == Some(*name)).map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        assert_eq!(from_flags, from_env);
        assert_ne!(from_flags, switchboard_resilience::Config::default(), "every setting differs from its default");
        assert_eq!(from_flags.window(), SlidingWindow::Time(30));
    }

    #[test]
    fn window_without_kind_is_count_based() {
        let c = parse(&["--test-breaker-window=50"]).unwrap().breaker.config().unwrap();
        assert_eq!(c.window(), SlidingWindow::Count(50));
        let c = parse(&["--test-breaker-window-kind=time"]).unwrap().breaker.config().unwrap();
        assert_eq!(c.window(), SlidingWindow::Time(100));
    }

    #[test]
    fn invalid_values_are_refused_by_clap_naming_the_flag() {
        let cases = [
            ("--test-breaker-failure-rate=abc", "not a percentage"),
            ("--test-breaker-failure-rate=0", "out of range"),
            ("--test-breaker-slow-call-rate=101", "out of range"),
            ("--test-breaker-slow-call-ms=-1", "--test-breaker-slow-call-ms"),
            ("--test-breaker-wait-open-ms=", "--test-breaker-wait-open-ms"),
            ("--test-breaker-window=0", "--test-breaker-window"),
            ("--test-breaker-window-kind=sliding", "--test-breaker-window-kind"),
            ("--test-breaker-min-calls=0", "--test-breaker-min-calls"),
            ("--test-breaker-half-open-calls=70000", "--test-breaker-half-open-calls"),
        ];
        for (arg, want) in cases {
            let err = parse(&[arg]).unwrap_err();
            let flag = arg.split('=').next().unwrap();
            assert!(err.contains("invalid value") && err.contains(flag) && err.contains(want), "{arg}: {err}");
        }
    }
}
