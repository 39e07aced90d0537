//! The exporter's settings, read from the OpenTelemetry environment variables.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sampler::{Policy, Sampler};

/// Where the traces go when only `OTEL_EXPORTER_OTLP_ENDPOINT` is given: its `/v1/traces`.
const TRACES_PATH: &str = "v1/traces";

/// The OTLP exporter's settings. [`ExportConfig::from_env`] reads them the OpenTelemetry way;
/// without an endpoint nothing is exported (and nothing recorded).
///
/// `Debug` never shows the header values: they usually carry an API key.
#[derive(Clone)]
pub struct ExportConfig {
    /// The full URL spans are POSTed to (`…/v1/traces`); `None`: export off.
    pub endpoint: Option<String>,
    /// Extra request headers (an API key, a tenant): secret, never logged.
    pub headers: Vec<(String, String)>,
    /// `service.name` for a process running one service; `None`: the service's own name.
    pub service_name: Option<String>,
    /// Further resource attributes (`deployment.environment.name=prod`, …).
    pub resource: Vec<(String, String)>,
    /// Which spans are exported.
    pub policy: Policy,
    /// Longest wait for the collector's answer to one batch (connect included).
    pub timeout: Duration,
    /// A PEM file of CA certificates trusted for an `https` endpoint, instead of the Mozilla roots.
    pub certificate: Option<PathBuf>,
    /// Most spans waiting for the exporter thread; one more is dropped and counted.
    pub max_queue: usize,
    /// Most spans in one request.
    pub max_batch: usize,
    /// Longest wait before a batch that is not full is sent.
    pub delay: Duration,
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: no export, whatever else says.
    pub disabled: bool,
    /// Whether `OTEL_TRACES_SAMPLER` was set (else the policy's sampler is the default).
    pub sampler_set: bool,
}

impl fmt::Debug for ExportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ExportConfig")
            .field("endpoint", &self.endpoint)
            .field("headers", &format_args!("{header_names:?} (values redacted)"))
            .field("service_name", &self.service_name)
            .field("resource", &self.resource)
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("certificate", &self.certificate)
            .field("max_queue", &self.max_queue)
            .field("max_batch", &self.max_batch)
            .field("delay", &self.delay)
            .field("disabled", &self.disabled)
            .finish()
    }
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            endpoint: None,
            headers: Vec::new(),
            service_name: None,
            resource: Vec::new(),
            policy: Policy::default(),
            timeout: Duration::from_secs(10),
            certificate: None,
            max_queue: 2048,
            max_batch: 512,
            delay: Duration::from_millis(200),
            disabled: false,
            sampler_set: false,
        }
    }
}

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ExportConfig {
    /// Reads the process environment (see [`from_lookup`](Self::from_lookup)).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `var` (the environment, or a map in tests):
    ///
    /// - `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: export off.
    /// - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL), else `OTEL_EXPORTER_OTLP_ENDPOINT`
    ///   + `/v1/traces`; neither: export off.
    /// - `OTEL_EXPORTER_OTLP_PROTOCOL` / `_TRACES_PROTOCOL`: only `http/protobuf`.
    /// - `OTEL_EXPORTER_OTLP_HEADERS` / `_TRACES_HEADERS`: `k=v,k2=v2`, values percent-decoded.
    /// - `OTEL_EXPORTER_OTLP_TIMEOUT` / `_TRACES_TIMEOUT` (ms), `OTEL_EXPORTER_OTLP_CERTIFICATE`
    ///   / `_TRACES_CERTIFICATE` (a CA file for https).
    /// - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` (`k=v,…`).
    /// - `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`; `SWITCHBOARD_TRACES_SLOW_MS` (spans
    ///   this long are always kept; default 250).
    /// - `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` (ms).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| var(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let either = |specific: &str, general: &str| get(specific).or_else(|| get(general));
        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        let mut config = ExportConfig { disabled, ..ExportConfig::default() };
        if let Some(exporter) = get("OTEL_TRACES_EXPORTER").filter(|v| !v.eq_ignore_ascii_case("none")) {
            if !exporter.split(',').any(|e| e.trim() == "otlp") {
                return Err(ConfigError(format!("OTEL_TRACES_EXPORTER {exporter:?}: only otlp or none")));
            }
        }
        if let Some(protocol) = either("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") {
            if protocol != "http/protobuf" {
                return Err(ConfigError(format!("OTLP protocol {protocol:?}: only http/protobuf is supported")));
            }
        }
        config.endpoint = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            _ if config.disabled => None,
            (Some(url), _) => Some(checked_url(url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?),
            (None, Some(base)) => {
                let base = checked_url(base, "OTEL_EXPORTER_OTLP_ENDPOINT")?;
                Some(format!("{}/{TRACES_PATH}", base.trim_end_matches('/')))
            }
            (None, None) => None,
        };
        let mut headers = pairs(get("OTEL_EXPORTER_OTLP_HEADERS").as_deref(), "OTEL_EXPORTER_OTLP_HEADERS")?;
        for (k, v) in pairs(get("OTEL_EXPORTER_OTLP_TRACES_HEADERS").as_deref(), "OTEL_EXPORTER_OTLP_TRACES_HEADERS")? {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
        config.headers = headers;
        if let Some(ms) = either("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") {
            config.timeout = Duration::from_millis(number(&ms, "OTEL_EXPORTER_OTLP_TIMEOUT")?.max(1));
        }
        config.certificate =
            either("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE").map(PathBuf::from);
        config.service_name = get("OTEL_SERVICE_NAME");
        config.resource = pairs(get("OTEL_RESOURCE_ATTRIBUTES").as_deref(), "OTEL_RESOURCE_ATTRIBUTES")?;
        if let Some(name) = get("OTEL_TRACES_SAMPLER") {
            let sampler = Sampler::from_name(&name, get("OTEL_TRACES_SAMPLER_ARG").as_deref())
                .map_err(|e| ConfigError(e.to_string()))?;
            config.policy.sampler = sampler;
            config.sampler_set = true;
        }
        if let Some(ms) = get("SWITCHBOARD_TRACES_SLOW_MS") {
            config.policy.slow = Duration::from_millis(number(&ms, "SWITCHBOARD_TRACES_SLOW_MS")?);
        }
        if let Some(n) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            config.max_queue = number(&n, "OTEL_BSP_MAX_QUEUE_SIZE")?.clamp(1, 1 << 20) as usize;
        }
        if let Some(n) = get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            config.max_batch = number(&n, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?.clamp(1, 1 << 16) as usize;
        }
        if let Some(ms) = get("OTEL_BSP_SCHEDULE_DELAY") {
            config.delay = Duration::from_millis(number(&ms, "OTEL_BSP_SCHEDULE_DELAY")?.max(1));
        }
        Ok(config)
    }

    /// For a process that has a trace viewer of its own (the all-in-one and its console):
    /// export to `base` (its `/v1/traces`) when no endpoint is configured and export is not
    /// disabled, and then keep every trace unless `OTEL_TRACES_SAMPLER` says otherwise.
    pub fn or_local_viewer(mut self, base: &str) -> Self {
        if self.endpoint.is_none() && !self.disabled {
            self.endpoint = Some(format!("{}/{TRACES_PATH}", base.trim_end_matches('/')));
            if !self.sampler_set {
                self.policy.sampler = Sampler::ParentBasedAlwaysOn;
            }
        }
        self
    }

    /// Whether spans are recorded and exported at all.
    pub fn is_enabled(&self) -> bool {
        self.endpoint.is_some()
    }
}

fn checked_url(url: String, var: &str) -> Result<String, ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        // The value may embed credentials: name the variable, not the value.
        Err(ConfigError(format!("{var} must be an http:// or https:// URL")))
    }
}

fn number(value: &str, var: &str) -> Result<u64, ConfigError> {
    value.parse().map_err(|_| ConfigError(format!("{var} {value:?} is not a whole number")))
}

/// `k=v,k2=v2` (W3C baggage form, as the OpenTelemetry variables use it), values percent-decoded.
fn pairs(list: Option<&str>, var: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(list) = list else { return Ok(Vec::new()) };
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=').ok_or_else(|| ConfigError(format!("{var}: an item has no '='")))?;
            let key = k.trim();
            if key.is_empty() {
                return Err(ConfigError(format!("{var}: an item has an empty key")));
            }
            let value = percent_decode(v.trim()).ok_or_else(|| ConfigError(format!("{var}: bad percent-encoding")))?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<ExportConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ExportConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn no_endpoint_means_no_export() {
        let c = read(&[("OTEL_SERVICE_NAME", "gw")]).unwrap();
        assert!(!c.is_enabled());
        assert_eq!(c.policy, Policy::default());
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_specific_one_is_used_as_is() {
        let c = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://collector:4318/v1/traces"));
        let c = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://tempo:4318/otlp/v1/traces"),
        ])
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("https://tempo:4318/otlp/v1/traces"));
        assert!(read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).is_err());
    }

    #[test]
    fn a_local_viewer_is_the_fallback_endpoint_only() {
        let c = read(&[]).unwrap().or_local_viewer("http://127.0.0.1:8090/");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:8090/v1/traces"));
        assert_eq!(c.policy.sampler, Sampler::ParentBasedAlwaysOn);
        let set =
            read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_TRACES_SAMPLER", "always_off")])
                .unwrap()
                .or_local_viewer("http://127.0.0.1:8090");
        assert_eq!(set.endpoint.as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(set.policy.sampler, Sampler::AlwaysOff);
        let off = read(&[("OTEL_SDK_DISABLED", "true")]).unwrap().or_local_viewer("http://127.0.0.1:8090");
        assert!(!off.is_enabled());
    }

    #[test]
    fn disabling_wins_over_an_endpoint() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(!read(&[endpoint, ("OTEL_SDK_DISABLED", "true")]).unwrap().is_enabled());
        assert!(!read(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).unwrap().is_enabled());
        assert!(read(&[endpoint, ("OTEL_SDK_DISABLED", "false")]).unwrap().is_enabled());
        assert!(read(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
        assert!(read(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).is_err());
    }

    #[test]
    fn headers_are_decoded_and_never_shown_by_debug() {
        let c = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cret-token,x-tenant=a"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Tenant=b"),
        ])
        .unwrap();
        assert_eq!(
            c.headers,
            vec![("authorization".into(), "Bearer s3cret-token".into()), ("X-Tenant".into(), "b".into())]
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
        assert!(read(&[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")]).is_err());
        assert!(read(&[("OTEL_EXPORTER_OTLP_HEADERS", "k=%zz")]).is_err());
    }

    #[test]
    fn sampler_resource_and_batching_settings_are_read() {
        let c = read(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
            ("SWITCHBOARD_TRACES_SLOW_MS", "40"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,team=a%2Cb"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "16"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
        ])
        .unwrap();
        assert_eq!(c.policy.sampler, Sampler::TraceIdRatio(0.5));
        assert_eq!(c.policy.slow, Duration::from_millis(40));
        assert_eq!(
            c.resource,
            vec![("deployment.environment.name".into(), "test".into()), ("team".into(), "a,b".into())]
        );
        assert_eq!((c.max_queue, c.delay, c.timeout), (16, Duration::from_millis(50), Duration::from_millis(700)));
        assert!(read(&[("OTEL_TRACES_SAMPLER_ARG", "x"), ("OTEL_TRACES_SAMPLER", "traceidratio")]).is_err());
        assert!(read(&[("OTEL_BSP_MAX_QUEUE_SIZE", "-1")]).is_err());
    }
}
