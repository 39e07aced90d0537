//! A parser of the Prometheus / OpenMetrics text exposition format, for the samples only
//! (`# HELP`, `# TYPE`, `# UNIT` and `# EOF` are skipped): the console needs names, labels and
//! values, not metadata. Malformed lines are skipped, never fatal: a service's metrics must not
//! be able to break the console.

/// One sample: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `name`.
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Samples kept from one exposition; the rest is ignored.
const MAX_SAMPLES: usize = 50_000;

/// Every well-formed sample of `text`, at most [`MAX_SAMPLES`].
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(sample)
        .take(MAX_SAMPLES)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(after)?;
        labels = parsed;
        rest = after;
    }
    // The value, then an optional timestamp (and, in OpenMetrics, an exemplar after `#`).
    let value = rest.split('#').next()?.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name: name.to_owned(), labels, value })
}

/// Parses `k="v",...}` and returns the labels and what follows the `}`.
fn label_set(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let mut chars = s[eq + 1..].trim_start().char_indices();
        let quoted = &s[eq + 1..].trim_start();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return None;
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            match (escaped, c) {
                (true, 'n') => {
                    value.push('\n');
                    escaped = false;
                }
                (true, c) => {
                    value.push(c);
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                (false, c) => value.push(c),
            }
        }
        let end = end?;
        labels.push((key.to_owned(), value));
        s = quoted[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels() {
        let text =
            "# HELP x A thing\n# TYPE x counter\nx_total 3\nup{job=\"a\",instance=\"b:1\"} 1 1700000000\n# EOF\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0], Sample { name: "x_total".into(), labels: vec![], value: 3.0 });
        assert_eq!(samples[1].label("instance"), Some("b:1"));
        assert_eq!(samples[1].value, 1.0);
    }

    #[test]
    fn escapes_infinities_and_exemplars() {
        let text = concat!(
            "h_bucket{le=\"+Inf\"} 7\n",
            "m{path=\"a\\\"b\\\\c\\nd\",x=\"}\"} 2.5 # {trace_id=\"abc\"} 1.0\n",
            "g -Inf\n"
        );
        let samples = parse(text);
        assert_eq!(samples[0].label("le"), Some("+Inf"));
        assert_eq!(samples[0].value, 7.0);
        assert_eq!(samples[1].label("path"), Some("a\"b\\c\nd"));
        assert_eq!(samples[1].label("x"), Some("}"));
        assert_eq!(samples[1].value, 2.5);
        assert_eq!(samples[2].value, f64::NEG_INFINITY);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "good 1\nbad{unterminated=\"x 1\nno_value\n{x=\"y\"} 1\nname{=\"v\"} 1\nnan NaN\nalso_good 2\n";
        let names: Vec<String> = parse(text).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["good", "nan", "also_good"]);
    }

    #[test]
    fn the_registry_of_our_services_parses_whole() {
        let metrics = switchboard_telemetry::Metrics::builder("gateway").routes(["/messages"]).build();
        metrics.http_request("/messages", "POST", 200, std::time::Duration::from_millis(3));
        metrics.http_request("/messages", "POST", 503, std::time::Duration::from_millis(1));
        metrics.breaker_state("gateway_publish", switchboard_telemetry::BreakerState::Open);
        let samples = parse(&metrics.encode());
        let requests: f64 = samples.iter().filter(|s| s.name == "http_requests_total").map(|s| s.value).sum();
        assert_eq!(requests, 2.0);
        let breaker = samples.iter().find(|s| s.name == "breaker_state").expect("breaker gauge");
        assert_eq!((breaker.label("breaker"), breaker.value), (Some("gateway_publish"), 1.0));
        let inf = samples
            .iter()
            .find(|s| s.name == "http_request_duration_seconds_bucket" && s.label("le") == Some("+Inf"))
            .expect("histogram buckets");
        assert_eq!(inf.value, 2.0);
    }
}
