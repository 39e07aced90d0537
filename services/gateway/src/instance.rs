//! A gateway instance's stable identity and the reply partition it reads.
//!
//! Each gateway reads one partition of the replies topic by manual assignment (no consumer
//! group, so none is left behind) and names it in every request's envelope; the processor
//! publishes the reply there (like Spring Kafka's `REPLY_PARTITION`). So a gateway consumes
//! about 1/N of the replies instead of all of them. Instances whose ids map to the same
//! partition both read it: correct (the pending map matches replies by request id), only less
//! efficient. Restarts reuse the id, so a restarted gateway reads the same partition.

/// The instance id when none is configured: the host name (a Kubernetes pod's name), read
/// from the kernel; `gateway` when it cannot be read.
pub fn default_instance_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".into())
}

/// The reply partition of `instance_id` on a topic of `partitions` partitions: an id ending in
/// a number (a StatefulSet ordinal, `gateway-2`) takes that number modulo the count, so
/// N numbered gateways on N or more partitions never share one; any other id a stable hash.
/// Always in `0..partitions` (0 when the count is not positive).
pub fn reply_partition(instance_id: &str, partitions: i32) -> i32 {
    if partitions < 1 {
        return 0;
    }
    let digits: String = instance_id.chars().rev().take_while(char::is_ascii_digit).collect();
    let digits: String = digits.chars().rev().take(9).collect();
    let n = match digits.parse::<u64>() {
        Ok(n) => n,
        Err(_) => fnv1a(instance_id.as_bytes()),
    };
    (n % partitions as u64) as i32
}

/// FNV-1a: stable across runs and Rust releases (unlike `DefaultHasher`), so a restarted
/// instance finds its partition again.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_instances_get_distinct_partitions_and_every_result_is_in_range() {
        let parts: Vec<i32> = (0..3).map(|i| reply_partition(&format!("gateway-{i}"), 6)).collect();
        assert_eq!(parts, vec![0, 1, 2]);
        assert_eq!(reply_partition("gateway-7", 6), 1, "ordinals wrap around the partition count");
        for id in ["", "web-abc", "gateway-99999999999999999999", "x9", "ünïcode-3"] {
            for count in [1, 2, 7, 1024] {
                let p = reply_partition(id, count);
                assert!((0..count).contains(&p), "{id} on {count}: {p}");
            }
        }
        assert_eq!(reply_partition("web-abc", 0), 0, "no partitions: 0, never a panic");
        assert_eq!(reply_partition("web-abc", -3), 0);
    }

    #[test]
    fn the_same_id_keeps_its_partition() {
        assert_eq!(reply_partition("web-7f9c-kx2", 12), reply_partition("web-7f9c-kx2", 12));
        assert!(!default_instance_id().is_empty());
    }
}
