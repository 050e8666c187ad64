//! Round-trip time: a 64-byte TCP ping-pong over loopback between two threads of this
//! process pinned to different CPUs (what a message between two nodes on this box meets:
//! a wake-up on another vCPU), measured at the start of every run so that latencies can be
//! read in round trips. The same exchange unpinned is recorded beside it: the scheduler often
//! puts both threads on one CPU, which is several times faster and not what nodes see.
//! Against remote hosts, where nothing of ours listens, the SQL protocol's own `COM_PING` to
//! node 0 stands in (it includes the server's trivial handling of the ping).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::stats::{new_histogram, record_us};

/// A measured round-trip time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rtt {
    /// `tcp-loopback-64B-cross-cpu`, `tcp-loopback-64B` (one CPU only) or `mysql-com-ping`.
    pub method: String,
    pub round_trips: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub min_us: f64,
    /// The same ping-pong with the threads left where the scheduler puts them.
    #[serde(default)]
    pub unpinned_p50_us: Option<f64>,
}

const MESSAGE: usize = 64;

/// `round_trips` ping-pongs of 64 bytes over 127.0.0.1 with TCP_NODELAY (after a tenth as many
/// unmeasured ones), between threads pinned to two different CPUs when there are two; then a
/// tenth as many unpinned, for comparison.
pub fn loopback(round_trips: u64) -> std::io::Result<Rtt> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (pin_client, pin_echo, method) = if cores.len() >= 2 {
        (Some(cores[0]), Some(cores[1]), "tcp-loopback-64B-cross-cpu")
    } else {
        (None, None, "tcp-loopback-64B")
    };
    let h = ping_pong(round_trips, pin_client, pin_echo)?;
    let mut r = of_histogram(method, &h);
    r.unpinned_p50_us = ping_pong((round_trips / 10).max(50), None, None)
        .ok()
        .map(|h| h.value_at_quantile(0.5) as f64);
    Ok(r)
}

fn ping_pong(
    round_trips: u64,
    pin_client: Option<core_affinity::CoreId>,
    pin_echo: Option<core_affinity::CoreId>,
) -> std::io::Result<hdrhistogram::Histogram<u64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        if let Some(c) = pin_echo {
            core_affinity::set_for_current(c);
        }
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; MESSAGE];
        loop {
            match s.read_exact(&mut buf) {
                Ok(()) => s.write_all(&buf)?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    // The client runs on its own thread so that pinning it leaves the caller's thread alone.
    let client = std::thread::spawn(move || -> std::io::Result<hdrhistogram::Histogram<u64>> {
        if let Some(c) = pin_client {
            core_affinity::set_for_current(c);
        }
        let mut c = TcpStream::connect(addr)?;
        c.set_nodelay(true)?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut h = new_histogram();
        let mut buf = [7u8; MESSAGE];
        let warm = (round_trips / 10).max(10);
        for i in 0..warm + round_trips {
            let t = Instant::now();
            c.write_all(&buf)?;
            c.read_exact(&mut buf)?;
            if i >= warm {
                record_us(&mut h, t.elapsed().as_secs_f64() * 1e6);
            }
        }
        Ok(h)
    });
    let h = client
        .join()
        .map_err(|_| std::io::Error::other("ping-pong client panicked"))?;
    echo.join()
        .map_err(|_| std::io::Error::other("echo thread panicked"))??;
    h
}

/// `round_trips` `COM_PING`s on an open connection.
pub fn com_ping(conn: &mut mysql::Conn, round_trips: u64) -> mysql::Result<Rtt> {
    let mut h = new_histogram();
    for i in 0..round_trips + 10 {
        let t = Instant::now();
        conn.ping()?;
        if i >= 10 {
            record_us(&mut h, t.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(of_histogram("mysql-com-ping", &h))
}

fn of_histogram(method: &str, h: &hdrhistogram::Histogram<u64>) -> Rtt {
    Rtt {
        method: method.into(),
        round_trips: h.len(),
        p50_us: h.value_at_quantile(0.5) as f64,
        p99_us: h.value_at_quantile(0.99) as f64,
        min_us: h.min() as f64,
        unpinned_p50_us: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ping_pong_measures_every_round_trip() {
        let r = loopback(200).expect("loopback works");
        assert_eq!(r.round_trips, 200);
        assert!(
            r.min_us >= 1.0 && r.min_us <= r.p50_us && r.p50_us <= r.p99_us,
            "{r:?}"
        );
        assert!(r.unpinned_p50_us.unwrap() > 0.0);
    }
}
