//! Breaker settings as flags: one struct per breaker, each setting a flag with its
//! environment fallback (`{PREFIX}_FAILURE_RATE`, …), so `--help` shows them all.

use switchboard_resilience::{Config, ConfigError};

/// Declares a `clap::Args` struct of one breaker's settings: `--{flag}-failure-rate` with
/// `{env}_FAILURE_RATE`, and so on for every setting `Config::from_lookup` reads. Unset
/// settings keep the breaker defaults; a bad value is an error naming the variable.
///
/// ```
/// use clap::Parser;
///
/// switchboard_scaffold::breaker_args!(
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
/// let cli = Cli::try_parse_from(["t", "--orders-breaker-window", "lots"]).unwrap();
/// assert_eq!(cli.breaker.config().unwrap_err().to_string(), "invalid ORDERS_BREAKER_WINDOW=\"lots\": not a whole number");
/// ```
#[macro_export]
macro_rules! breaker_args {
    ($(#[$doc:meta])* $name:ident, env = $env:literal, flag = $flag:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $name {
            /// Failure rate in percent, (0, 100], that opens the breaker [default: 50].
            #[arg(long = concat!($flag, "-failure-rate"), env = concat!($env, "_FAILURE_RATE"), value_name = "PERCENT")]
            pub failure_rate: Option<String>,
            /// Slow-call rate in percent, (0, 100], that opens the breaker [default: 100].
            #[arg(long = concat!($flag, "-slow-call-rate"), env = concat!($env, "_SLOW_CALL_RATE"), value_name = "PERCENT")]
            pub slow_call_rate: Option<String>,
            /// A call longer than this many milliseconds is slow [default: 5000].
            #[arg(long = concat!($flag, "-slow-call-ms"), env = concat!($env, "_SLOW_CALL_MS"), value_name = "MS")]
            pub slow_call_ms: Option<String>,
            /// Window size: calls, or seconds for a time window [default: 100].
            #[arg(long = concat!($flag, "-window"), env = concat!($env, "_WINDOW"), value_name = "N")]
            pub window: Option<String>,
            /// Window kind: `count` or `time` [default: count].
            #[arg(long = concat!($flag, "-window-kind"), env = concat!($env, "_WINDOW_KIND"), value_name = "KIND")]
            pub window_kind: Option<String>,
            /// Calls in the window before the rates count [default: 20].
            #[arg(long = concat!($flag, "-min-calls"), env = concat!($env, "_MIN_CALLS"), value_name = "N")]
            pub min_calls: Option<String>,
            /// Milliseconds open before probing [default: 5000].
            #[arg(long = concat!($flag, "-wait-open-ms"), env = concat!($env, "_WAIT_OPEN_MS"), value_name = "MS")]
            pub wait_open_ms: Option<String>,
            /// Probe calls in half-open [default: 10].
            #[arg(long = concat!($flag, "-half-open-calls"), env = concat!($env, "_HALF_OPEN_CALLS"), value_name = "N")]
            pub half_open_calls: Option<String>,
        }

        impl $name {
            /// The breaker settings these flags describe (validated as a whole).
            pub fn config(&self) -> Result<$crate::BreakerConfig, $crate::BreakerConfigError> {
                $crate::breaker_config(
                    $env,
                    [
                        ("FAILURE_RATE", &self.failure_rate),
                        ("SLOW_CALL_RATE", &self.slow_call_rate),
                        ("SLOW_CALL_MS", &self.slow_call_ms),
                        ("WINDOW", &self.window),
                        ("WINDOW_KIND", &self.window_kind),
                        ("MIN_CALLS", &self.min_calls),
                        ("WAIT_OPEN_MS", &self.wait_open_ms),
                        ("HALF_OPEN_CALLS", &self.half_open_calls),
                    ],
                )
            }
        }
    };
}

/// The settings of the breaker `prefix` from `(suffix, value)` pairs, with the checks and error
/// messages of `Config::from_lookup`; what [`breaker_args!`](crate::breaker_args) structs call.
pub fn breaker_config(prefix: &str, values: [(&str, &Option<String>); 8]) -> Result<Config, ConfigError> {
    Config::from_lookup(prefix, |name| {
        let suffix = name.strip_prefix(prefix)?.strip_prefix('_')?;
        values.iter().find(|(s, _)| *s == suffix).and_then(|(_, v)| (*v).clone())
    })
}
