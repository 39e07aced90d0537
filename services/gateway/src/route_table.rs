//! The gateway's routes, listed once: the router registers its handlers at these templates,
//! the HTTP metrics label requests by them, and a 405 names their methods in `Allow`.

/// One route: its path template (`:name` matches one path segment) and the methods it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The template, as tide registers it and as the `route` label of the HTTP metrics.
    pub path: &'static str,
    /// The methods it answers, as `Allow` lists them (GET routes answer HEAD too).
    pub methods: &'static str,
}

/// `POST /messages`: a transaction through the chain.
pub const MESSAGES: Route = Route { path: "/messages", methods: "POST" };
/// `POST /jobs`: a job on the work queue.
pub const JOBS: Route = Route { path: "/jobs", methods: "POST" };
/// `GET /jobs/:id`: a job's state.
pub const JOB: Route = Route { path: "/jobs/:id", methods: "GET, HEAD" };
/// `GET /healthz`: liveness.
pub const HEALTHZ: Route = Route { path: "/healthz", methods: "GET, HEAD" };
/// `GET /readyz`: readiness.
pub const READYZ: Route = Route { path: "/readyz", methods: "GET, HEAD" };
/// `GET /metrics`: Prometheus text.
pub const METRICS: Route = Route { path: "/metrics", methods: "GET, HEAD" };
/// `GET /openapi.json`: the API's description.
pub const OPENAPI: Route = Route { path: "/openapi.json", methods: "GET, HEAD" };

/// Every route the gateway serves.
pub const ROUTES: [Route; 7] = [MESSAGES, JOBS, JOB, HEALTHZ, READYZ, METRICS, OPENAPI];

/// The templates of [`ROUTES`]: the only values of the HTTP metrics' `route` label besides
/// `other`.
pub fn templates() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().map(|r| r.path)
}

/// The route serving `path`, if any.
pub fn route_of(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| matches(r.path, path))
}

fn matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with(':') && !ps.is_empty() => {}
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_route_and_nothing_else_does() {
        assert_eq!(route_of("/messages"), Some(&MESSAGES));
        assert_eq!(route_of("/jobs"), Some(&JOBS));
        assert_eq!(route_of("/jobs/0b7c"), Some(&JOB));
        assert_eq!(route_of("/openapi.json"), Some(&OPENAPI));
        for other in ["/", "", "/jobs/", "/jobs/a/b", "/messages/x", "/metricsx", "/wp-admin.php", "//messages"] {
            assert_eq!(route_of(other), None, "{other}");
        }
        assert_eq!(templates().count(), ROUTES.len());
    }
}
