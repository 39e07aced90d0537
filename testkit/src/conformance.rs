//! One conformance suite for every backend of the ports, in the style of Watermill's universal
//! pub/sub tests: each case is a `pub fn`, backends call them from their own tests.

pub mod pubsub;
pub mod queue;

use std::future::Future;
use std::time::Duration;

/// Runs one case on the current thread, failing it after `timeout` (a hang is a failure).
#[track_caller]
pub fn run<F: Future<Output = ()>>(name: &str, timeout: Duration, case: F) {
    smol::block_on(futures_lite::future::or(case, async {
        smol::Timer::after(timeout).await;
        panic!("case {name} timed out after {timeout:?}");
    }));
}

/// One named `#[test]` per case of the suite module `$suite` (`pubsub`, `queue`), each run by
/// [`run`] within `$timeout` against the backend `$make` builds inside the test's async block,
/// with the attributes in brackets on every test. The suites' own macros name their cases.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (@one $suite:ident, $timeout:expr, $make:expr, [$(#[$attr:meta])*], $case:ident) => {
        #[test]
        $(#[$attr])*
        fn $case() {
            $crate::conformance::run(stringify!($case), $timeout, async {
                let backend = $make;
                $crate::conformance::$suite::$case(&backend).await;
            });
        }
    };
    ($suite:ident, $timeout:expr, $make:expr, $attrs:tt; $($case:ident),*) => {
        $( $crate::__conformance_tests!(@one $suite, $timeout, $make, $attrs, $case); )*
    };
}
