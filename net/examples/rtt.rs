//! Round-trip percentiles of a 64-byte frame, the method of shared/reference/deps-vetting.md:
//! 1,000 warm-up round trips, then 20,000 timed ones, per variant; p50 / p99 / p999 in us.
//!
//! `cargo run --release -p trireme-net --example rtt [ROUND_TRIPS [ONLY]]`, ONLY a prefix
//! such as `io_uring/busy` to run fewer variants.
//!
//! Variants as in `benches/round_trip.rs`: blocking (`poll(None)`) or busy
//! (`poll(Some(ZERO))`), server on the other core or the same core as the client. The `std`
//! rows are the baseline measured in the same run: plain std sockets exchanging 64 bytes
//! (blocking reads, or busy non-blocking reads), so a busy shared machine can be told apart
//! from transport overhead.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use trireme_net::{
    open, probe_io_uring, FrameKind, NetEvent, TransportChoice, TransportConfig, WakeFd,
};

fn config(choice: TransportChoice) -> TransportConfig {
    let mut c = TransportConfig::new("rtt", "tcp://127.0.0.1:0");
    c.choice = choice;
    c
}

fn pin(cores: &[core_affinity::CoreId], core: usize) {
    if let Some(id) = cores.get(core % cores.len().max(1)) {
        core_affinity::set_for_current(*id);
    }
}

fn run(choice: TransportChoice, busy: bool, server_core: usize, n: usize) -> Vec<Duration> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let server_wake = Arc::new(WakeFd::new().unwrap());
    let (tx, rx) = mpsc::channel();
    let server = {
        let (stop, wake, cores) = (stop.clone(), server_wake.clone(), cores.clone());
        std::thread::spawn(move || {
            pin(&cores, server_core);
            let mut t = open(config(choice)).unwrap();
            tx.send(t.listen().unwrap().to_string()).unwrap();
            let timeout = if busy { Some(Duration::ZERO) } else { None };
            let mut events = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                t.poll(&mut events, timeout, wake.as_raw_fd()).unwrap();
                for ev in events.drain(..) {
                    if let NetEvent::Frame {
                        conn,
                        kind,
                        payload,
                    } = ev
                    {
                        t.send(conn, kind, &payload).unwrap();
                    }
                }
            }
        })
    };
    let addr = rx.recv().unwrap();
    let client = std::thread::spawn(move || {
        pin(&cores, 0);
        let wake = WakeFd::new().unwrap();
        let mut t = open(config(choice)).unwrap();
        let conn = t.connect(&addr).unwrap();
        let mut events = Vec::new();
        loop {
            t.poll(
                &mut events,
                Some(Duration::from_millis(10)),
                wake.as_raw_fd(),
            )
            .unwrap();
            if events
                .drain(..)
                .any(|e| matches!(e, NetEvent::Connected { .. }))
            {
                break;
            }
        }
        let timeout = if busy { Some(Duration::ZERO) } else { None };
        let payload = [0x42u8; 64];
        let mut samples = Vec::with_capacity(n);
        for i in 0..1_000 + n {
            let start = Instant::now();
            t.send(conn, FrameKind::Group, &payload).unwrap();
            loop {
                t.poll(&mut events, timeout, wake.as_raw_fd()).unwrap();
                if events
                    .drain(..)
                    .any(|e| matches!(e, NetEvent::Frame { .. }))
                {
                    break;
                }
            }
            if i >= 1_000 {
                samples.push(start.elapsed());
            }
        }
        samples
    });
    let mut samples = client.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    server_wake.signal();
    server.join().unwrap();
    samples.sort();
    samples
}

/// The baseline: std TcpStreams, TCP_NODELAY, 64 bytes each way.
fn run_std(busy: bool, server_core: usize, n: usize) -> Vec<Duration> {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    fn read_exact(s: &mut TcpStream, buf: &mut [u8], busy: bool) {
        if !busy {
            return s.read_exact(buf).unwrap();
        }
        let mut got = 0;
        while got < buf.len() {
            match s.read(&mut buf[got..]) {
                Ok(0) => panic!("eof"),
                Ok(k) => got += k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = {
        let cores = cores.clone();
        std::thread::spawn(move || {
            pin(&cores, server_core);
            let (mut s, _) = listener.accept().unwrap();
            s.set_nodelay(true).unwrap();
            s.set_nonblocking(busy).unwrap();
            let mut buf = [0u8; 64];
            for _ in 0..1_000 + n {
                read_exact(&mut s, &mut buf, busy);
                s.write_all(&buf).unwrap();
            }
        })
    };
    let client = std::thread::spawn(move || {
        pin(&cores, 0);
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_nonblocking(busy).unwrap();
        let mut buf = [0x42u8; 64];
        let mut samples = Vec::with_capacity(n);
        for i in 0..1_000 + n {
            let start = Instant::now();
            s.write_all(&buf).unwrap();
            read_exact(&mut s, &mut buf, busy);
            if i >= 1_000 {
                samples.push(start.elapsed());
            }
        }
        samples
    });
    let mut samples = client.join().unwrap();
    server.join().unwrap();
    samples.sort();
    samples
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let only = std::env::args().nth(2).unwrap_or_default();
    let uring = probe_io_uring();
    if let Err(e) = &uring {
        println!("SKIPPED io_uring: {e}");
    }
    println!("| transport | mode | cores | p50 us | p99 us | p999 us |");
    println!("|---|---|---|---|---|---|");
    for (name, choice) in [
        ("std", TransportChoice::Auto),
        ("portable", TransportChoice::Portable),
        ("io_uring", TransportChoice::IoUring),
    ] {
        if choice == TransportChoice::IoUring && uring.is_err() {
            continue;
        }
        for (mode, busy, server_core, where_) in [
            ("blocking", false, 1, "cross"),
            ("blocking", false, 0, "same"),
            ("busy", true, 1, "cross"),
        ] {
            if !format!("{name}/{mode}/{where_}").starts_with(&only) {
                continue;
            }
            let s = if name == "std" {
                run_std(busy, server_core, n)
            } else {
                run(choice, busy, server_core, n)
            };
            let p =
                |q: f64| s[((s.len() as f64 * q) as usize).min(s.len() - 1)].as_secs_f64() * 1e6;
            println!(
                "| {name} | {mode} | {where_} | {:.1} | {:.1} | {:.1} |",
                p(0.50),
                p(0.99),
                p(0.999)
            );
        }
    }
}
