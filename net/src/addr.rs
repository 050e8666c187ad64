//! Peer and listen addresses as Galera writes them: `tcp://0.0.0.0:4567`, `[::]:4567`,
//! `node1:4567`, `node1` (port 4567), `192.168.0.5`.
//!
//! Owns: parsing and name resolution. Resolution uses std's `ToSocketAddrs` (getaddrinfo) and
//! BLOCKS the calling thread, which is shard 0: a numeric address never touches the resolver,
//! and a host name is resolved only when the group (re)connects to a configured peer, which
//! happens at join and after a peer is lost, not per transaction; names normally come from
//! /etc/hosts or a local cache. A stalled DNS server can still hold shard 0 for the resolver's
//! timeout; moving resolution to a helper thread is noted as future work in the README.

use crate::NetError;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Galera's default replication port.
pub const DEFAULT_PORT: u16 = 4567;

/// Splits an address into host and port (default [`DEFAULT_PORT`]), accepting an optional
/// `tcp://` scheme. IPv6 literals with a port are bracketed (`[::1]:4567`).
pub fn split_host_port(address: &str) -> Result<(String, u16), NetError> {
    let bad = |reason: &str| NetError::BadAddress {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = address.trim();
    let rest = match trimmed.split_once("://") {
        Some(("tcp", rest)) => rest,
        Some((scheme, _)) => return Err(bad(&format!("unsupported scheme {scheme:?} (only tcp)"))),
        None => trimmed,
    };
    if rest.is_empty() {
        return Err(bad("empty address"));
    }
    if let Ok(ip) = rest.parse::<IpAddr>() {
        return Ok((ip.to_string(), DEFAULT_PORT));
    }
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad("port is not a number in 0..=65535"))
    };
    if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("bracketed host is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host.to_string(), DEFAULT_PORT)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host.to_string(), parse_port(port)?)),
                None => Err(bad("expected ':port' after ']'")),
            },
        };
    }
    match rest.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err(bad("IPv6 address with a port needs brackets"))
        }
        Some(("", _)) => Err(bad("empty host")),
        Some((host, port)) => Ok((host.to_string(), parse_port(port)?)),
        None => Ok((rest.to_string(), DEFAULT_PORT)),
    }
}

/// Resolves an address to every socket address it names, in the resolver's order.
/// Blocks for host names (see the module header for why that is acceptable).
pub fn resolve(address: &str) -> Result<Vec<SocketAddr>, NetError> {
    let (host, port) = split_host_port(address)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|source| NetError::Resolve {
            address: address.to_string(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(NetError::Resolve {
            address: address.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        });
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(a: &str) -> (String, u16) {
        split_host_port(a).unwrap_or_else(|e| panic!("{a}: {e}"))
    }

    #[test]
    fn galera_address_forms_parse() {
        assert_eq!(ok("tcp://0.0.0.0:4567"), ("0.0.0.0".into(), 4567));
        assert_eq!(ok("[::]:4567"), ("::".into(), 4567));
        assert_eq!(ok("tcp://[::1]:5000"), ("::1".into(), 5000));
        assert_eq!(ok("::1"), ("::1".into(), 4567));
        assert_eq!(ok("[::1]"), ("::1".into(), 4567));
        assert_eq!(ok("node1"), ("node1".into(), 4567));
        assert_eq!(ok("node1:4568"), ("node1".into(), 4568));
        assert_eq!(ok("10.0.0.1"), ("10.0.0.1".into(), 4567));
    }

    #[test]
    fn malformed_addresses_are_refused_with_a_reason() {
        for bad in [
            "",
            "udp://x:1",
            "host:port",
            "host:70000",
            "[::1",
            "[nothost]:1",
            "a:b:c",
            ":4567",
            "[::1]x",
        ] {
            assert!(
                matches!(split_host_port(bad), Err(NetError::BadAddress { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
