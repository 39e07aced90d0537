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
/// let cli = Cli::try_parse_from(["t", "--orders-breaker-window", "lots"]).unwrap();
/// assert_eq!(cli.breaker.config().unwrap_err().to_string(), "invalid ORDERS_BREAKER_WINDOW=\"lots\": not a whole number");
/// ```
#[macro_export]
macro_rules! breaker_args {
    ($(#[$doc:meta])* $name:ident, env = $env:literal, flag = $flag:literal) => {
        $crate::breaker_args!(@struct $(#[$doc])* $name, $env, $flag,
            failure_rate "-failure-rate" "_FAILURE_RATE" "PERCENT"
                "Failure rate in percent, (0, 100], that opens the breaker [default: 50].",
            slow_call_rate "-slow-call-rate" "_SLOW_CALL_RATE" "PERCENT"
                "Slow-call rate in percent, (0, 100], that opens the breaker [default: 100].",
            slow_call_ms "-slow-call-ms" "_SLOW_CALL_MS" "MS" "A call longer than this is slow [default: 5000].",
            window "-window" "_WINDOW" "N" "Window size: calls, or seconds for a time window [default: 100].",
            window_kind "-window-kind" "_WINDOW_KIND" "KIND" "Window kind: `count` or `time` [default: count].",
            min_calls "-min-calls" "_MIN_CALLS" "N" "Calls in the window before the rates count [default: 20].",
            wait_open_ms "-wait-open-ms" "_WAIT_OPEN_MS" "MS" "Milliseconds open before probing [default: 5000].",
            half_open_calls "-half-open-calls" "_HALF_OPEN_CALLS" "N" "Probe calls in half-open [default: 10].",
        );
    };
    (@struct $(#[$doc:meta])* $name:ident, $env:literal, $flag:literal,
        $($field:ident $long:literal $var:literal $value:literal $help:literal,)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $name {
            $(
                #[doc = $help]
                #[arg(id = concat!($env, $var), long = concat!($flag, $long), env = concat!($env, $var), value_name = $value)]
                pub $field: Option<String>,
            )*
        }

        impl $name {
            /// The breaker settings these flags describe (validated as a whole).
            pub fn config(&self) -> Result<$crate::BreakerConfig, $crate::BreakerConfigError> {
                $crate::breaker_config($env, &[$((&$var[1..], &self.$field)),*])
            }
        }
    };
}

/// The settings of the breaker `prefix` from `(suffix, value)` pairs, with the checks and error
/// messages of `Config::from_lookup`; what [`breaker_args!`](crate::breaker_args) structs call.
pub fn breaker_config(prefix: &str, values: &[(&str, &Option<String>)]) -> Result<Config, ConfigError> {
    Config::from_lookup(prefix, |name| {
        let suffix = name.strip_prefix(prefix)?.strip_prefix('_')?;
        values.iter().find(|(s, _)| *s == suffix).and_then(|(_, v)| (*v).clone())
    })
}
