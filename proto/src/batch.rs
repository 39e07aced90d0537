//! `ProcessBatch`: many envelopes in one call, each answered as `Process` would answer it.

use grpcio::{RpcStatus, RpcStatusCode};

use crate::generated::processor::{process_result, ItemStatus, ProcessResult, Published};
use crate::{Envelope, ProcessResponse};

/// The most envelopes one `ProcessBatch` call may carry; the processor refuses more with
/// INVALID_ARGUMENT (stated in `processor.proto`).
pub const MAX_BATCH: usize = 256;

impl ProcessResult {
    /// The result of one envelope: the published envelope (or only that it was published,
    /// when `None`: the caller asked not to get it back), or the status `Process` would have
    /// failed with.
    pub fn from_outcome(outcome: Result<Option<Envelope>, RpcStatus>) -> Self {
        let mut result = ProcessResult::new();
        result.outcome = Some(match outcome {
            Ok(Some(envelope)) => process_result::Outcome::Envelope(envelope),
            Ok(None) => process_result::Outcome::Published(Published::new()),
            Err(status) => {
                let mut item = ItemStatus::new();
                item.code = status.code().into();
                item.message = status.message().to_string();
                process_result::Outcome::Status(item)
            }
        });
        result
    }

    /// What a `Process` call for this envelope would have returned. A result without an
    /// outcome, or with status code 0 (OK without an envelope), is a processor fault: UNKNOWN.
    pub fn into_response(self) -> Result<ProcessResponse, grpcio::Error> {
        match self.outcome {
            Some(process_result::Outcome::Envelope(envelope)) => {
                let mut resp = ProcessResponse::new();
                resp.envelope = Some(envelope).into();
                Ok(resp)
            }
            Some(process_result::Outcome::Published(_)) => Ok(ProcessResponse::new()),
            Some(process_result::Outcome::Status(s)) if s.code != 0 => {
                Err(grpcio::Error::RpcFailure(RpcStatus::with_message(RpcStatusCode::from(s.code), s.message)))
            }
            _ => Err(grpcio::Error::RpcFailure(RpcStatus::with_message(
                RpcStatusCode::UNKNOWN,
                "processor answered an envelope without an outcome".to_string(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: &Result<ProcessResponse, grpcio::Error>) -> RpcStatusCode {
        match r {
            Err(grpcio::Error::RpcFailure(s)) => s.code(),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn an_envelope_and_a_status_survive_the_round_trip() {
        let e = Envelope { id: "a".into(), ..Envelope::default() };
        let ok = ProcessResult::from_outcome(Ok(Some(e.clone()))).into_response().unwrap();
        assert_eq!(ok.envelope.into_option(), Some(e));
        let published = ProcessResult::from_outcome(Ok(None)).into_response().unwrap();
        assert_eq!(published.envelope.into_option(), None, "OK without the envelope");
        let failed = ProcessResult::from_outcome(Err(RpcStatus::with_message(
            RpcStatusCode::FAILED_PRECONDITION,
            "too large".into(),
        )))
        .into_response();
        assert_eq!(code(&failed), RpcStatusCode::FAILED_PRECONDITION);
        let Err(grpcio::Error::RpcFailure(s)) = failed else { unreachable!() };
        assert_eq!(s.message(), "too large");
    }

    #[test]
    fn a_result_without_outcome_or_with_code_zero_is_unknown_not_ok() {
        assert_eq!(code(&ProcessResult::new().into_response()), RpcStatusCode::UNKNOWN);
        let mut r = ProcessResult::new();
        r.outcome = Some(process_result::Outcome::Status(ItemStatus::new()));
        assert_eq!(code(&r.into_response()), RpcStatusCode::UNKNOWN);
    }
}
