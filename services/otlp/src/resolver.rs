//! The collector's address, looked up once and kept for a while.
//!
//! ureq looks the host up again before every request, even one that reuses a pooled
//! connection, and with a timeout set it does so on a thread it spawns for that lookup: a thread
//! created and ended per batch, about a tenth of the exporter thread's CPU under load. Kept
//! addresses are looked up again once they are [`KEEP`] old, so a collector that moves (a
//! Kubernetes Service re-created, a DNS change) is followed within that time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a lookup's answer is used.
pub(crate) const KEEP: Duration = Duration::from_secs(30);

/// A resolver (ureq's own by default) whose last answer is used for `keep`.
#[derive(Debug)]
pub(crate) struct KeptResolver<R = DefaultResolver> {
    inner: R,
    keep: Duration,
    /// The authority (`host:port` as in the URI) last looked up, when, and its addresses.
    kept: Mutex<Option<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Default for KeptResolver {
    fn default() -> Self {
        KeptResolver::new(DefaultResolver::default(), KEEP)
    }
}

impl<R: Resolver> KeptResolver<R> {
    fn new(inner: R, keep: Duration) -> Self {
        KeptResolver { inner, keep, kept: Mutex::new(None) }
    }
}

impl<R: Resolver> Resolver for KeptResolver<R> {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().map_or("", |a| a.as_str());
        let now = Instant::now();
        if let Ok(kept) = self.kept.lock() {
            let fresh = kept.as_ref().filter(|(a, at, _)| a == authority && now.duration_since(*at) < self.keep);
            if let Some((_, _, addrs)) = fresh {
                return Ok(addrs.clone());
            }
        }
        // A failed lookup is not kept: the next batch looks up again.
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some((authority.to_owned(), now, addrs.clone()));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU16, Ordering};

    use ureq::unversioned::transport::time;
    use ureq::Timeout;

    use super::*;

    /// Answers 10.0.0.1 with a port that grows by one per lookup, failing on `down`.
    #[derive(Debug, Default)]
    struct Counting {
        lookups: AtomicU16,
    }

    impl Resolver for Counting {
        fn resolve(&self, uri: &Uri, _: &Config, _: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
            if uri.host() == Some("down") {
                return Err(ureq::Error::HostNotFound);
            }
            let n = self.lookups.fetch_add(1, Ordering::Relaxed) + 1;
            let mut addrs = self.empty();
            addrs.push(SocketAddr::from(([10, 0, 0, 1], n)));
            Ok(addrs)
        }
    }

    fn port(resolver: &impl Resolver, uri: &str) -> Result<u16, ureq::Error> {
        let timeout = NextTimeout {
            after: time::Duration::NotHappening,
            reason: Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let addrs = resolver.resolve(&uri.parse().unwrap(), &Config::default(), timeout)?;
        Ok(addrs.first().unwrap().port())
    }

    #[test]
    fn an_answer_is_kept_per_authority_and_a_failure_is_not() {
        let kept = KeptResolver::new(Counting::default(), KEEP);
        assert_eq!(port(&kept, "http://collector:4318/v1/traces").unwrap(), 1);
        assert_eq!(port(&kept, "http://collector:4318/v1/traces").unwrap(), 1, "kept: no second lookup");
        assert_eq!(port(&kept, "http://other:4318/v1/traces").unwrap(), 2, "another authority is looked up");
        assert!(port(&kept, "http://down:4318/v1/traces").is_err());
        assert_eq!(port(&kept, "http://other:4318/v1/traces").unwrap(), 2, "a failure replaces nothing");
        assert_eq!(kept.inner.lookups.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_answer_older_than_the_keep_time_is_looked_up_again() {
        let kept = KeptResolver::new(Counting::default(), Duration::ZERO);
        assert_eq!(port(&kept, "http://collector:4318/v1/traces").unwrap(), 1);
        assert_eq!(port(&kept, "http://collector:4318/v1/traces").unwrap(), 2);
    }
}
