//! Network addresses in the forms Galera options use: `tcp://0.0.0.0:4567`, `127.0.0.1`,
//! `[::1]:4567`, `host:port`, `ssl://host:port`, and the `add:`/`del:` peer operations of
//! `gmcast.peer_addr`.
//!
//! Nothing here resolves names: `config` is pure, and a host name is checked only for its
//! characters. An IPv6 literal with a port must be bracketed (`[::1]:4567`), as in a URI: an
//! unbracketed `::1:4567` is ambiguous. A bare IPv6 literal with no port (`::1`, as
//! `wsrep_node_address` is often written) is taken whole, as Galera takes it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The transport named by an address's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Tcp,
    Ssl,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Tcp => "tcp",
            Scheme::Ssl => "ssl",
        }
    }
}

/// An address as written in an option: scheme and port are optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub scheme: Option<Scheme>,
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: Option<u16>,
}

/// A fully specified address to listen on or connect to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
}

/// A run-time request on `gmcast.peer_addr`: connect to one more peer, or forget one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerOp {
    Add(Address),
    Del(Address),
}

impl Address {
    /// Parses `[tcp://|ssl://]host[:port]`. The error says what was wrong, for the message.
    pub fn parse(text: &str) -> Result<Address, &'static str> {
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("tcp://") {
            (Some(Scheme::Tcp), rest)
        } else if let Some(rest) = text.strip_prefix("ssl://") {
            (Some(Scheme::Ssl), rest)
        } else if text.contains("://") {
            return Err("the scheme must be tcp:// or ssl://");
        } else {
            (None, text)
        };
        let (host, port_text) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or("an IPv6 address needs its closing ']'")?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err("the bracketed host is not an IPv6 address");
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or("expected ':port' after ']'")?,
                ),
            };
            (host, port)
        } else {
            if rest.matches(':').count() > 1 {
                if rest.parse::<Ipv6Addr>().is_ok() {
                    return Ok(Address {
                        scheme,
                        host: rest.to_string(),
                        port: None,
                    });
                }
                return Err(
                    "an IPv6 address with a port must be written in brackets, as in [::1]:4567",
                );
            }
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if !host.contains(':') {
            check_host_name(host)?;
        }
        let port = match port_text {
            None => None,
            Some(p) => Some(parse_port(p).ok_or("the port must be a number from 0 to 65535")?),
        };
        Ok(Address {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// The host as it appears in a URI: IPv6 literals bracketed.
    pub fn uri_host(&self) -> String {
        uri_host(&self.host)
    }

    /// Whether the host is a wildcard (`0.0.0.0`, `::`), which cannot name a node.
    pub fn is_unspecified(&self) -> bool {
        match (self.host.parse::<Ipv4Addr>(), self.host.parse::<Ipv6Addr>()) {
            (Ok(v4), _) => v4.is_unspecified(),
            (_, Ok(v6)) => v6.is_unspecified(),
            _ => false,
        }
    }
}

impl PeerOp {
    /// Parses `add:<address>` or `del:<address>`.
    pub fn parse(text: &str) -> Result<PeerOp, &'static str> {
        if let Some(addr) = text.strip_prefix("add:") {
            Ok(PeerOp::Add(Address::parse(addr)?))
        } else if let Some(addr) = text.strip_prefix("del:") {
            Ok(PeerOp::Del(Address::parse(addr)?))
        } else {
            Err("the value must start with add: or del:")
        }
    }
}

fn uri_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A DNS name or IPv4 literal: letters, digits, `.`, `-`, `_`; at most 253 characters.
fn check_host_name(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("the host is missing");
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("the host may only contain letters, digits, '.', '-' and '_'");
    }
    Ok(())
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = self.scheme {
            write!(f, "{}://", scheme.as_str())?;
        }
        f.write_str(&self.uri_host())?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            self.scheme.as_str(),
            uri_host(&self.host),
            self.port
        )
    }
}

impl fmt::Display for PeerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerOp::Add(a) => write!(f, "add:{a}"),
            PeerOp::Del(a) => write!(f, "del:{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(scheme: Option<Scheme>, host: &str, port: Option<u16>) -> Address {
        Address {
            scheme,
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn galera_address_forms_parse() {
        assert_eq!(
            Address::parse("tcp://0.0.0.0:4567"),
            Ok(addr(Some(Scheme::Tcp), "0.0.0.0", Some(4567)))
        );
        assert_eq!(
            Address::parse("127.0.0.1"),
            Ok(addr(None, "127.0.0.1", None))
        );
        assert_eq!(
            Address::parse("[::1]:4567"),
            Ok(addr(None, "::1", Some(4567)))
        );
        assert_eq!(Address::parse("[::1]"), Ok(addr(None, "::1", None)));
        // Bare, as wsrep_node_address is often written: the whole text is the address (a
        // port needs brackets, so `::1:4567` is the address 0:0:0:0:0:0:1:4567).
        assert_eq!(Address::parse("::1"), Ok(addr(None, "::1", None)));
        assert_eq!(
            Address::parse("fe80::1:4567"),
            Ok(addr(None, "fe80::1:4567", None))
        );
        assert_eq!(
            Address::parse("tcp://[::]:16001"),
            Ok(addr(Some(Scheme::Tcp), "::", Some(16001)))
        );
        assert_eq!(
            Address::parse("node-1.example:4568"),
            Ok(addr(None, "node-1.example", Some(4568)))
        );
        assert_eq!(
            Address::parse("ssl://db_2:4567"),
            Ok(addr(Some(Scheme::Ssl), "db_2", Some(4567)))
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "tcp://",
            ":4567",
            "udp://1.2.3.4:5",
            "gcomm://x",
            "[::1",
            "[::1]x",
            "[nothost]:1",
            "host:",
            "host:65536",
            "host:-1",
            "host:12a",
            "ho st",
            "hôte",
            "[::1]:99999",
            "a:b:c",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_round_trip_through_display() {
        for text in [
            "tcp://0.0.0.0:4567",
            "127.0.0.1",
            "[::1]:4567",
            "ssl://h:1",
            "[fe80::1]",
        ] {
            let parsed = Address::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        let listen = ListenAddr {
            scheme: Scheme::Tcp,
            host: "::".into(),
            port: 4567,
        };
        assert_eq!(listen.to_string(), "tcp://[::]:4567");
    }

    #[test]
    fn wildcard_hosts_are_recognised() {
        assert!(Address::parse("0.0.0.0").unwrap().is_unspecified());
        assert!(Address::parse("[::]").unwrap().is_unspecified());
        assert!(!Address::parse("127.0.0.1").unwrap().is_unspecified());
        assert!(!Address::parse("example").unwrap().is_unspecified());
    }

    #[test]
    fn peer_operations_need_add_or_del() {
        assert_eq!(
            PeerOp::parse("add:tcp://10.0.0.2:4567"),
            Ok(PeerOp::Add(addr(Some(Scheme::Tcp), "10.0.0.2", Some(4567))))
        );
        assert_eq!(
            PeerOp::parse("del:10.0.0.2:4567").map(|p| p.to_string()),
            Ok("del:10.0.0.2:4567".to_string())
        );
        assert!(PeerOp::parse("10.0.0.2:4567").is_err());
        assert!(PeerOp::parse("add:").is_err());
    }
}
