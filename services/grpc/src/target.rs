//! `PROCESSOR_ADDR` as a gRPC target: one address, several, or a DNS name resolving to many.

use std::net::SocketAddr;

pub use switchboard_topology::processor_addrs;

/// The gRPC target for `addr`: `ipv4:a:p,b:p` (or `ipv6:`) for IP addresses, so the
/// round-robin policy balances over all of them; `dns:///host:port` for a name, whose every
/// resolved address is balanced over. Anything [`processor_addrs`] refuses is passed on as is
/// (the channel then fails to connect, as any unreachable address does).
pub fn grpc_target(addr: &str) -> String {
    let Ok(list) = processor_addrs(addr) else {
        return addr.to_string();
    };
    let addrs: Vec<SocketAddr> = list.split(',').filter_map(|i| i.parse().ok()).collect();
    match addrs.first() {
        Some(first) if addrs.len() == list.split(',').count() => {
            let scheme = if first.is_ipv4() { "ipv4" } else { "ipv6" };
            format!("{scheme}:{list}")
        }
        _ => format!("dns:///{list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_several_or_a_name() {
        for (addresses, target) in [
            ("127.0.0.1:50051", "ipv4:127.0.0.1:50051"),
            (" 127.0.0.1:1, 127.0.0.2:2 ", "ipv4:127.0.0.1:1,127.0.0.2:2"),
            ("[::1]:7,[::1]:8", "ipv6:[::1]:7,[::1]:8"),
            ("processor.default.svc:50051", "dns:///processor.default.svc:50051"),
        ] {
            assert_eq!(grpc_target(addresses), target, "{addresses:?}");
        }
    }
}
