//! Label sets of the families, and the bounded sets of values that traffic-derived labels draw
//! from.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;

/// The label value that unknown routes and values past the cap collapse to.
pub const OTHER: &str = "other";

/// Default number of distinct values admitted per traffic-derived label.
pub const DEFAULT_LABEL_CAP: usize = 64;

/// An interned label value.
pub(super) type Label = Arc<str>;

/// The HTTP method as a label; anything but the nine standard methods is [`OTHER`].
pub(super) fn method_label(method: &str) -> &'static str {
    const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)).copied().unwrap_or(OTHER)
}

/// A bounded set of label values for one label, shared by the families that use it.
///
/// Either an allow-list (only the listed values, everything else is [`OTHER`]) or first come,
/// first admitted up to a cap. Values are interned as `Arc<str>` so a hit costs a read lock and
/// a reference-count bump, not an allocation.
pub struct LabelValues {
    name: &'static str,
    known: RwLock<HashSet<Label>>,
    cap: usize,
    fixed: bool,
    other: Label,
    warned: AtomicBool,
}

impl fmt::Debug for LabelValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelValues")
            .field("name", &self.name)
            .field("known", &self.known.read().len())
            .field("cap", &self.cap)
            .field("fixed", &self.fixed)
            .finish()
    }
}

impl LabelValues {
    /// Admits up to `cap` distinct values of label `name`.
    pub fn capped(name: &'static str, cap: usize) -> Self {
        Self::build(name, HashSet::new(), cap, false)
    }

    /// Admits only `values` of label `name`.
    pub fn allow_list<I, S>(name: &'static str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let known: HashSet<Label> = values.into_iter().map(|v| Label::from(v.as_ref())).collect();
        let cap = known.len();
        Self::build(name, known, cap, true)
    }

    fn build(name: &'static str, known: HashSet<Label>, cap: usize, fixed: bool) -> Self {
        LabelValues {
            name,
            known: RwLock::new(known),
            cap,
            fixed,
            other: Label::from(OTHER),
            warned: AtomicBool::new(false),
        }
    }

    /// The label value to record for `value`: itself if admitted, else [`OTHER`].
    pub fn admit(&self, value: &str) -> Arc<str> {
        if let Some(v) = self.known.read().get(value) {
            return v.clone();
        }
        if !self.fixed {
            let mut known = self.known.write();
            if let Some(v) = known.get(value) {
                return v.clone();
            }
            if known.len() < self.cap {
                let v = Label::from(value);
                known.insert(v.clone());
                return v;
            }
        }
        if !self.warned.swap(true, Relaxed) {
            log::warn!(
                "metrics label {} is full ({} values); {value:?} and later new values count as {OTHER:?}",
                self.name,
                self.cap
            );
        }
        self.other.clone()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HttpLabels {
    pub(super) route: Label,
    pub(super) method: &'static str,
    pub(super) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub(super) route: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HopLabels {
    pub(super) hop: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TopicLabels {
    pub(super) topic: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TopicOutcomeLabels {
    pub(super) topic: Label,
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct QueueOutcomeLabels {
    pub(super) queue: Label,
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DeadLetterLabels {
    pub(super) destination: Label,
    pub(super) reason_kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BreakerLabels {
    pub(super) breaker: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TransitionLabels {
    pub(super) breaker: Label,
    pub(super) from: &'static str,
    pub(super) to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BreakerOutcomeLabels {
    pub(super) breaker: Label,
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct GrpcLabels {
    pub(super) method: Label,
    pub(super) code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SpanDropLabels {
    pub(super) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct JobLabels {
    pub(super) status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_values_admit_the_first_ones_then_other() {
        let values = LabelValues::capped("topic", 2);
        assert_eq!(&*values.admit("a"), "a");
        assert_eq!(&*values.admit("b"), "b");
        assert_eq!(&*values.admit("c"), OTHER);
        assert_eq!(&*values.admit("a"), "a");
    }

    #[test]
    fn allow_list_admits_only_its_values() {
        let values = LabelValues::allow_list("route", ["/messages", "/jobs"]);
        assert_eq!(&*values.admit("/jobs"), "/jobs");
        assert_eq!(&*values.admit("/jobs/1"), OTHER);
        assert_eq!(&*values.admit(""), OTHER);
    }

    #[test]
    fn methods_are_normalised_and_bounded() {
        assert_eq!(method_label("post"), "POST");
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), OTHER);
    }
}
