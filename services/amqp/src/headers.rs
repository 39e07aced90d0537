//! Port headers ⇄ AMQP header tables.

use amiquip::{AmqpValue, FieldTable};
use switchboard_ports::{Headers, ATTEMPT_HEADER};

/// A header table with `headers` (UTF-8 values as strings, others as byte arrays) and the
/// attempt number. Duplicate names keep the last value: AMQP tables are maps.
pub(crate) fn to_table(headers: &Headers, attempt: u32) -> FieldTable {
    let mut t = FieldTable::new();
    for (name, value) in headers {
        let v = match String::from_utf8(value.clone()) {
            Ok(s) => AmqpValue::LongString(s),
            Err(e) => AmqpValue::ByteArray(e.into_bytes()),
        };
        t.insert(name.clone(), v);
    }
    t.insert(ATTEMPT_HEADER.to_owned(), AmqpValue::LongString(attempt.to_string()));
    t
}

/// Headers and attempt number (1 when absent or unreadable) from a table. Values that are not
/// strings or bytes (RabbitMQ's `x-death` tables) are left out.
pub(crate) fn from_table(table: Option<&FieldTable>) -> (Headers, u32) {
    let mut headers = Headers::new();
    let mut attempt = 1;
    for (name, value) in table.into_iter().flatten() {
        let bytes = match value {
            AmqpValue::LongString(s) => s.clone().into_bytes(),
            AmqpValue::ByteArray(b) => b.clone(),
            _ => continue,
        };
        if name == ATTEMPT_HEADER {
            attempt = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
        } else {
            headers.push((name.clone(), bytes));
        }
    }
    (headers, attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_with_attempt_and_binary_values() {
        let h = vec![("a".to_owned(), b"text".to_vec()), ("b".to_owned(), vec![0xff, 0])];
        let mut t = to_table(&h, 3);
        t.insert("x-death".into(), AmqpValue::FieldArray(vec![]));
        assert_eq!(from_table(Some(&t)), (h, 3));
        assert_eq!(from_table(None), (Vec::new(), 1));
    }
}
