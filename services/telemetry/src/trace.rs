//! W3C Trace Context (`traceparent`): parse, validate, start and continue a trace.
//!
//! The header is `{version}-{trace-id}-{parent-id}-{flags}`, lowercase hex:
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`. Per the spec an invalid incoming
//! header is not the client's error: the receiver ignores it and starts a new trace, which is
//! what [`TraceContext::continue_or_new`] does.

use std::fmt;

/// The header (HTTP, Kafka record, AMQP) that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Length of a version-00 `traceparent`.
const LEN: usize = 55;

/// The trace-flags bit that says the caller may have recorded this trace.
const SAMPLED: u8 = 0x01;

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Too short, or a version-00 header of the wrong length.
    Length,
    /// Dashes missing or misplaced.
    Format,
    /// Not hex, or the reserved version `ff`.
    Version,
    /// Not 32 lowercase hex digits, or all zeros.
    TraceId,
    /// Not 16 lowercase hex digits, or all zeros.
    ParentId,
    /// Not 2 lowercase hex digits.
    Flags,
}

impl fmt::Display for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceparentError::Length => "traceparent has the wrong length",
            TraceparentError::Format => "traceparent is not four dash-separated fields",
            TraceparentError::Version => "traceparent has an invalid version",
            TraceparentError::TraceId => "traceparent has an invalid trace id",
            TraceparentError::ParentId => "traceparent has an invalid parent id",
            TraceparentError::Flags => "traceparent has invalid flags",
        })
    }
}

impl std::error::Error for TraceparentError {}

/// The 16-byte id shared by every span of a trace; displays as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

impl TraceId {
    /// The id's bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

/// The 8-byte id of the span that sent a request; displays as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId([u8; 8]);

impl SpanId {
    /// The id's bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

// Both ids display as lowercase hex and debug as `Name(hex)`.
macro_rules! hex_id_fmt {
    ($($id:ident),*) => {$(
        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }

        impl fmt::Debug for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($id), "({})"), self)
            }
        }
    )*};
}

hex_id_fmt!(TraceId, SpanId);

/// A position in a trace: trace id, the id of the current span (sent as `parent-id`), flags.
///
/// Displays as a version-00 `traceparent` value. Each service hop makes a [`child`]
/// (same trace id, new span id) and sends that downstream:
///
/// ```
/// use switchboard_telemetry::TraceContext;
///
/// // Gateway: continue the client's trace, or start one if the header is absent or invalid.
/// let incoming = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// let ctx = TraceContext::continue_or_new(incoming);
/// assert_eq!(ctx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
///
/// // Kafka header bytes work the same way; garbage starts a new trace instead of failing.
/// let fresh = TraceContext::continue_or_new(Some(b"not a traceparent".as_slice()));
/// assert_ne!(fresh.trace_id(), ctx.trace_id());
///
/// let header = ctx.to_string();
/// assert_eq!(header.len(), 55);
/// assert_eq!(TraceContext::parse(&header), Ok(ctx));
/// ```
///
/// [`child`]: TraceContext::child
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    flags: u8,
}

impl TraceContext {
    /// A new trace with random ids, sampled.
    pub fn new() -> Self {
        TraceContext { trace_id: TraceId(nonzero_u128().to_be_bytes()), span_id: new_span(), flags: SAMPLED }
    }

    /// Parses a `traceparent` value (`&str`, `String`, or header bytes).
    ///
    /// Version 00 must be exactly 55 characters. Higher versions are parsed by their first four
    /// fields, as the spec asks, and re-emitted as version 00. Hex must be lowercase.
    pub fn parse(value: impl AsRef<[u8]>) -> Result<Self, TraceparentError> {
        let v = value.as_ref();
        if v.len() < LEN {
            return Err(TraceparentError::Length);
        }
        if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return Err(TraceparentError::Format);
        }
        let version = hex::<1>(&v[0..2]).ok_or(TraceparentError::Version)?[0];
        if version == 0xff {
            return Err(TraceparentError::Version);
        }
        if version == 0 && v.len() != LEN {
            return Err(TraceparentError::Length);
        }
        // A future version may append fields, but only after another dash.
        if v.len() > LEN && v[LEN] != b'-' {
            return Err(TraceparentError::Format);
        }
        let trace_id = hex::<16>(&v[3..35]).filter(|id| *id != [0; 16]);
        let span_id = hex::<8>(&v[36..52]).filter(|id| *id != [0; 8]);
        let flags = hex::<1>(&v[53..55]).ok_or(TraceparentError::Flags)?[0];
        Ok(TraceContext {
            trace_id: TraceId(trace_id.ok_or(TraceparentError::TraceId)?),
            span_id: SpanId(span_id.ok_or(TraceparentError::ParentId)?),
            flags,
        })
    }

    /// The incoming context if present and valid, else a new trace (logged at debug level).
    pub fn continue_or_new<V: AsRef<[u8]>>(incoming: Option<V>) -> Self {
        match incoming.map(|v| Self::parse(v)) {
            Some(Ok(ctx)) => ctx,
            Some(Err(e)) => {
                log::debug!("{e}; starting a new trace");
                Self::new()
            }
            None => Self::new(),
        }
    }

    /// The context for the next hop: same trace id and flags, a new span id.
    pub fn child(&self) -> Self {
        TraceContext { span_id: new_span(), ..*self }
    }

    /// The trace id (log it to join the lines of one request across services).
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The current span id, sent downstream as `parent-id`.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The same position with the sampled flag set or cleared (the other flag bits kept): a
    /// trace's first service records its sampling decision here for every later hop.
    pub fn with_sampled(self, sampled: bool) -> Self {
        let flags = if sampled { self.flags | SAMPLED } else { self.flags & !SAMPLED };
        TraceContext { flags, ..self }
    }
}

impl Default for TraceContext {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always version 00: the only version this crate understands fully.
        write!(f, "00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

impl std::str::FromStr for TraceContext {
    type Err = TraceparentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn nonzero_u128() -> u128 {
    loop {
        let v = fastrand::u128(..);
        if v != 0 {
            return v;
        }
    }
}

fn new_span() -> SpanId {
    SpanId(fastrand::u64(1..).to_be_bytes())
}

/// Decodes exactly `2 * N` lowercase hex digits.
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples of https://www.w3.org/TR/trace-context/#examples-of-http-traceparent-headers
    const SAMPLED_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const UNSAMPLED_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

    #[test]
    fn parses_the_spec_examples() {
        let ctx = TraceContext::parse(SAMPLED_EXAMPLE).unwrap();
        assert_eq!(ctx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id().to_string(), "00f067aa0ba902b7");
        assert!(ctx.is_sampled());
        assert_eq!(ctx.to_string(), SAMPLED_EXAMPLE);

        let ctx: TraceContext = UNSAMPLED_EXAMPLE.parse().unwrap();
        assert!(!ctx.is_sampled());
        assert_eq!(ctx.to_string(), UNSAMPLED_EXAMPLE);
    }

    #[test]
    fn rejects_invalid_headers_with_the_reason() {
        use TraceparentError::*;
        let cases = [
            ("", Length),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", Length),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", Length),
            ("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Format),
            ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Version),
            ("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Version),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", TraceId),
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", TraceId),
            ("00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01", TraceId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ParentId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", Flags),
        ];
        for (header, kind) in cases {
            assert_eq!(TraceContext::parse(header), Err(kind), "{header:?}");
        }
    }

    #[test]
    fn future_versions_parse_their_first_four_fields() {
        let longer = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        let ctx = TraceContext::parse(longer).unwrap();
        assert_eq!(ctx.to_string(), SAMPLED_EXAMPLE);
        let glued = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert_eq!(TraceContext::parse(glued), Err(TraceparentError::Format));
    }

    #[test]
    fn invalid_incoming_header_starts_a_new_trace() {
        let bad = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        let ctx = TraceContext::continue_or_new(Some(bad));
        assert_ne!(ctx.trace_id().to_bytes(), [0; 16]);
        assert_eq!(TraceContext::parse(ctx.to_string()), Ok(ctx));

        let kept = TraceContext::continue_or_new(Some(SAMPLED_EXAMPLE.as_bytes()));
        assert_eq!(kept.to_string(), SAMPLED_EXAMPLE);
        assert!(TraceContext::continue_or_new(None::<&str>).is_sampled());
    }

    #[test]
    fn generated_contexts_are_valid_and_distinct() {
        let a = TraceContext::new();
        let b = TraceContext::new();
        assert_ne!(a.trace_id(), b.trace_id());
        for ctx in [a, b] {
            let header = ctx.to_string();
            assert_eq!(header.len(), 55);
            assert!(header.starts_with("00-") && header.ends_with("-01"));
            assert_eq!(TraceContext::parse(&header), Ok(ctx));
        }
    }

    #[test]
    fn every_byte_displays_as_two_lowercase_hex_digits() {
        for b in 0..=255u8 {
            let ctx = TraceContext { trace_id: TraceId([b; 16]), span_id: SpanId([b; 8]), flags: b };
            let d = format!("{b:02x}");
            assert_eq!(ctx.to_string(), format!("00-{}-{}-{d}", d.repeat(16), d.repeat(8)));
            assert_eq!(ctx.trace_id().to_string(), d.repeat(16));
        }
    }

    #[test]
    fn with_sampled_sets_only_the_sampled_bit() {
        let ctx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03").unwrap();
        let off = ctx.with_sampled(false);
        assert_eq!(off.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02");
        assert!(!off.is_sampled());
        assert_eq!(off.with_sampled(true), ctx);
    }

    #[test]
    fn child_keeps_trace_and_flags_with_a_new_span() {
        let parent = TraceContext::parse(UNSAMPLED_EXAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_eq!(child.flags(), parent.flags());
        assert_ne!(child.span_id(), parent.span_id());
        assert_ne!(child.span_id().to_bytes(), [0; 8]);
        assert_eq!(TraceContext::parse(child.to_string()), Ok(child));
    }
}
