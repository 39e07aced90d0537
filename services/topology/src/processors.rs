//! `PROCESSOR_ADDR` as relays and workers take it: one address, several, or a DNS name.

use std::net::SocketAddr;

/// Checks a processor address list: `host:port`, or several comma-separated `ip:port` of one
/// family. Returns it normalised (items trimmed) for [`grpc_target`]; meant as a clap
/// `value_parser`.
pub fn processor_addrs(s: &str) -> Result<String, String> {
    let items: Vec<&str> = s.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
    match items.as_slice() {
        [] => Err("no processor address: expected HOST:PORT or IP:PORT,IP:PORT,…".into()),
        [one] => {
            if one.parse::<SocketAddr>().is_ok() {
                return Ok((*one).to_string());
            }
            match one.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok((*one).to_string()),
                _ => Err(format!("expected HOST:PORT, got {one:?}")),
            }
        }
        many => {
            let addrs: Vec<SocketAddr> = many
                .iter()
                .map(|i| {
                    i.parse::<SocketAddr>().map_err(|_| {
                        format!(
                            "{i:?}: several processors are listed as IP:PORT (or give one DNS name resolving to many)"
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            if addrs.iter().any(|a| a.is_ipv4() != addrs[0].is_ipv4()) {
                return Err("processor addresses mix IPv4 and IPv6: list one family".into());
            }
            Ok(addrs.iter().map(SocketAddr::to_string).collect::<Vec<_>>().join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lists_are_refused_with_a_reason() {
        assert!(processor_addrs("").is_err());
        assert!(processor_addrs(" , ").is_err());
        assert!(processor_addrs("host-without-port").is_err());
        assert!(processor_addrs("host:99999").is_err());
        let why = processor_addrs("a:1,b:2").unwrap_err();
        assert!(why.contains("IP:PORT"), "{why}");
        assert!(processor_addrs("127.0.0.1:1,[::1]:2").unwrap_err().contains("mix"));
    }
}
