use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use switchboard_ports::{Error, ErrorKind};

/// A port error for `what` (a short lowercase phrase) failing with `e`, kind chosen so callers
/// know whether a retry can help.
pub(crate) fn port_error(what: &str, e: KafkaError) -> Error {
    Error::new(kind_of(&e), format!("{what}: {e}")).with_source(e)
}

pub(crate) fn kind_of(e: &KafkaError) -> ErrorKind {
    // rdkafka reports no code for admin errors although they carry one.
    if let Some(code) = e.rdkafka_error_code().or(match e {
        KafkaError::AdminOp(code) => Some(*code),
        _ => None,
    }) {
        return code_kind(code);
    }
    match e {
        KafkaError::Canceled => ErrorKind::Closed,
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) | KafkaError::Nul(_) => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

fn code_kind(code: Code) -> ErrorKind {
    match code {
        Code::MessageTimedOut | Code::RequestTimedOut | Code::OperationTimedOut | Code::TimedOutQueue => {
            ErrorKind::Timeout
        }
        Code::BrokerTransportFailure
        | Code::AllBrokersDown
        | Code::Resolve
        | Code::QueueFull
        | Code::LeaderNotAvailable
        | Code::NotLeaderForPartition
        | Code::BrokerNotAvailable
        | Code::ReplicaNotAvailable
        | Code::NetworkException
        | Code::CoordinatorLoadInProgress
        | Code::CoordinatorNotAvailable
        | Code::NotCoordinator
        | Code::WaitingForCoordinator
        | Code::NotEnoughReplicas
        | Code::NotEnoughReplicasAfterAppend
        | Code::RebalanceInProgress
        | Code::KafkaStorageError
        | Code::FencedLeaderEpoch
        | Code::UnknownLeaderEpoch
        | Code::ISRInsufficient
        | Code::NotController
        | Code::OffsetNotAvailable
        | Code::PreferredLeaderNotAvailable
        | Code::EligibleLeadersNotAvailable
        | Code::ReassignmentInProgress
        | Code::ThrottlingQuotaExceeded
        | Code::UnstableOffsetCommit
        | Code::NodeUpdate
        | Code::WaitCache
        | Code::Interrupted
        | Code::Retry => ErrorKind::Unavailable,
        Code::UnknownTopicOrPartition
        | Code::UnknownTopic
        | Code::UnknownPartition
        | Code::InvalidTopic
        | Code::MessageSizeTooLarge
        | Code::InvalidMessageSize
        | Code::InvalidMessage
        // RecordListTooLarge in Kafka's naming.
        | Code::MessageBatchTooLarge
        | Code::InvalidRecord
        | Code::InvalidTimestamp
        | Code::InvalidRequiredAcks
        | Code::UnsupportedForMessageFormat
        | Code::UnsupportedCompressionType
        | Code::BadMessage
        | Code::BadCompression
        | Code::KeySerialization
        | Code::ValueSerialization
        | Code::UnknownTopicId
        | Code::InvalidArgument
        | Code::InvalidPartitions
        | Code::InvalidReplicationFactor
        | Code::InvalidConfig
        | Code::InvalidRequest
        | Code::PolicyViolation
        | Code::InvalidGroupId
        | Code::InvalidSessionTimeout
        | Code::TopicAuthorizationFailed
        | Code::GroupAuthorizationFailed
        | Code::ClusterAuthorizationFailed
        | Code::TransactionalIdAuthorizationFailed
        | Code::DelegationTokenAuthorizationFailed
        | Code::SaslAuthenticationFailed
        | Code::UnsupportedSASLMechanism
        | Code::IllegalSASLState
        | Code::SecurityDisabled
        | Code::SSL
        // The idempotent producer hit a fatal error: this producer instance can send no more.
        | Code::Fatal
        | Code::Fenced
        | Code::ProducerFenced
        | Code::InvalidProducerEpoch
        | Code::NotImplemented
        | Code::UnsupportedVersion
        | Code::UnsupportedFeature
        | Code::Authentication => ErrorKind::Invalid,
        Code::BrokerDestroy | Code::DestroyBroker | Code::PurgeQueue | Code::PurgeInflight => ErrorKind::Closed,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
    use switchboard_ports::ErrorKind;

    use super::{kind_of, port_error};

    #[test]
    fn broker_outages_are_transient_and_bad_topics_are_not() {
        let down = port_error("publish", KafkaError::MessageProduction(Code::AllBrokersDown));
        assert!(down.is_transient());
        let timeout = port_error("publish", KafkaError::MessageProduction(Code::MessageTimedOut));
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        let unknown = KafkaError::MessageProduction(Code::UnknownTopicOrPartition);
        assert_eq!(kind_of(&unknown), ErrorKind::Invalid);
        let big = port_error("publish", KafkaError::MessageProduction(Code::MessageSizeTooLarge));
        assert!(!big.is_transient());
        assert!(big.to_string().starts_with("publish: "));
        assert_eq!(kind_of(&KafkaError::Canceled), ErrorKind::Closed);
        assert_eq!(kind_of(&KafkaError::AdminOp(Code::OperationTimedOut)), ErrorKind::Timeout);
    }

    #[test]
    fn every_permanent_produce_error_is_invalid_and_every_outage_transient() {
        // Retrying these can never succeed: the relay dead-letters instead of looping.
        let permanent = [
            Code::MessageSizeTooLarge,
            Code::InvalidMessageSize,
            Code::UnknownTopicOrPartition,
            Code::UnknownTopic,
            Code::InvalidMessage,
            Code::InvalidRecord,
            Code::MessageBatchTooLarge,
            Code::TopicAuthorizationFailed,
            Code::ClusterAuthorizationFailed,
            Code::SaslAuthenticationFailed,
            Code::InvalidTopic,
            Code::UnsupportedCompressionType,
            Code::Fatal,
        ];
        for code in permanent {
            let e = port_error("publish", KafkaError::MessageProduction(code));
            assert_eq!(e.kind(), ErrorKind::Invalid, "{code:?}");
            assert!(!e.is_transient(), "{code:?}");
        }
        let transient = [
            Code::AllBrokersDown,
            Code::BrokerTransportFailure,
            Code::NotLeaderForPartition,
            Code::LeaderNotAvailable,
            Code::NotEnoughReplicas,
            Code::ThrottlingQuotaExceeded,
            Code::QueueFull,
            Code::MessageTimedOut,
            Code::RequestTimedOut,
        ];
        for code in transient {
            assert!(port_error("publish", KafkaError::MessageProduction(code)).is_transient(), "{code:?}");
        }
    }
}
