use switchboard_resilience::{CircuitBreaker, State};

use crate::{BreakerState, CheckStatus, Metrics, Readiness};

/// Mirrors `breaker` into `metrics` under `name`: the state gauge now, and every transition
/// (counter and gauge) from now on.
pub fn watch_breaker(metrics: &Metrics, name: &str, breaker: &CircuitBreaker) {
    metrics.breaker_state(name, state(breaker.state()));
    let (metrics, name) = (metrics.clone(), name.to_string());
    breaker.on_transition(move |e| metrics.breaker_transition(&name, state(e.from), state(e.to)));
}

/// Adds the readiness check `check`: not ready, saying `why`, while `breaker` is open.
pub fn ready_unless_open(readiness: &Readiness, check: &str, breaker: &CircuitBreaker, why: &'static str) {
    let breaker = breaker.clone();
    readiness.add_sync_check(check.to_string(), move || match breaker.state() {
        State::Open => CheckStatus::not_ready(why),
        _ => CheckStatus::Ok,
    });
}

fn state(s: State) -> BreakerState {
    match s {
        State::Closed => BreakerState::Closed,
        State::Open => BreakerState::Open,
        State::HalfOpen => BreakerState::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchboard_resilience::{Config, SlidingWindow};

    use super::*;

    #[test]
    fn transitions_show_in_the_metrics() {
        let metrics = Metrics::new("test");
        let config = Config::builder()
            .window(SlidingWindow::Count(2))
            .min_calls(2)
            .wait_open(Duration::from_secs(60))
            .build()
            .unwrap();
        let breaker = CircuitBreaker::new(config);
        watch_breaker(&metrics, "processor", &breaker);
        for _ in 0..2 {
            breaker.try_acquire().unwrap().failure();
        }
        let text = metrics.encode();
        assert!(text.contains(r#"breaker_transitions_total{breaker="processor",from="closed",to="open"} 1"#), "{text}");
        assert!(text.contains(r#"breaker_state{breaker="processor"} 1"#), "{text}");
    }

    #[test]
    fn an_open_breaker_makes_the_service_not_ready() {
        let (readiness, breaker) = (Readiness::new(), CircuitBreaker::new(Config::default()));
        ready_unless_open(&readiness, "processor", &breaker, "processor breaker open");
        assert!(smol::block_on(readiness.report()).ready);
        breaker.force_open();
        let report = smol::block_on(readiness.report());
        assert!(!report.ready);
        assert!(report.to_json().contains("processor breaker open"), "{}", report.to_json());
    }
}
