//! Which amiquip errors a retry can fix: callers act on the kind (the worker retries
//! `Unavailable`, never `Invalid`).

use switchboard_ports::ErrorKind;

/// `Invalid` when retrying cannot help (refused by the broker for good, bad settings),
/// `Unavailable` for everything a reconnect may fix.
pub(crate) fn kind_of(e: &amiquip::Error) -> ErrorKind {
    use amiquip::Error as E;
    match e {
        E::ServerClosedChannel { code, .. } | E::ServerClosedConnection { code, .. } => reply_code_kind(*code),
        E::InvalidCredentials
        | E::UnsupportedAuthMechanism { .. }
        | E::SaslSecureNotSupported
        | E::UnsupportedLocale { .. }
        | E::FrameMaxTooSmall { .. }
        | E::TlsFeatureNotEnabled
        | E::InsecureUrl { .. }
        | E::UrlParseError { .. }
        | E::InvalidUrlScheme { .. }
        | E::UrlMissingDomain { .. }
        | E::SpecifyUrlPort { .. }
        | E::ExtraUrlPathSegments { .. }
        | E::UrlInvalidAuthMechanism { .. }
        | E::UrlUnsupportedParameter { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Unavailable,
    }
}

/// AMQP 0-9-1 reply codes (RabbitMQ's `amqp0-9-1.xml`): hard refusals are permanent, the
/// broker's own trouble (forced close, locked, out of resources, internal error) is not.
fn reply_code_kind(code: u16) -> ErrorKind {
    match code {
        // content-too-large, no-route, invalid-path, access-refused, not-found,
        // precondition-failed, frame/syntax/command errors, not-allowed, not-implemented
        311 | 312 | 402 | 403 | 404 | 406 | 501..=505 | 530 | 540 => ErrorKind::Invalid,
        _ => ErrorKind::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_broker_trouble_is_not() {
        let closed = |code| amiquip::Error::ServerClosedChannel { channel_id: 1, code, message: String::new() };
        for code in [311, 403, 404, 406, 530] {
            assert_eq!(kind_of(&closed(code)), ErrorKind::Invalid, "{code}");
        }
        for code in [320, 405, 506, 541] {
            assert_eq!(kind_of(&closed(code)), ErrorKind::Unavailable, "{code}");
        }
        let forced = amiquip::Error::ServerClosedConnection { code: 320, message: "shutdown".into() };
        assert_eq!(kind_of(&forced), ErrorKind::Unavailable);
        assert_eq!(kind_of(&amiquip::Error::InvalidCredentials), ErrorKind::Invalid);
        assert_eq!(kind_of(&amiquip::Error::UnexpectedSocketClose), ErrorKind::Unavailable);
        assert_eq!(kind_of(&amiquip::Error::MissedServerHeartbeats), ErrorKind::Unavailable);
    }
}
