//! Transport round trip: a 64-byte frame ping-pong over loopback between two transports on
//! two threads, for both implementations.
//!
//! Variants: `blocking` (each side waits in `poll(None)`: the shard's parked case),
//! `busy` (each side spins on `poll(Some(ZERO))`: the shard's spin budget), and where the two
//! threads run: `cross_core` (CPU0 and CPU1) or `same_core` (both on CPU0). Two spinning
//! threads on one core only measure the scheduler, so there is no busy/same_core variant.
//! `cargo bench -p trireme-net --bench round_trip`; numbers in the crate README.

use criterion::{criterion_group, criterion_main, Criterion};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use trireme_net::{
    open, probe_io_uring, FrameKind, NetEvent, Transport, TransportChoice, TransportConfig, WakeFd,
};

fn config(choice: TransportChoice) -> TransportConfig {
    let mut c = TransportConfig::new("bench", "tcp://127.0.0.1:0");
    c.choice = choice;
    c
}

/// The machine's cores, read once before any thread is pinned: a pinned thread (and every
/// thread it spawns) sees only its own core in `get_core_ids`.
fn all_cores() -> &'static [core_affinity::CoreId] {
    static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

fn pin(core: usize) {
    let cores = all_cores();
    if let Some(id) = cores.get(core % cores.len().max(1)) {
        core_affinity::set_for_current(*id);
    }
}

/// Runs an echo server on its own thread until `stop`; returns its address.
fn echo_server(
    choice: TransportChoice,
    core: usize,
    busy: bool,
    stop: Arc<AtomicBool>,
    wake: Arc<WakeFd>,
) -> (String, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        pin(core);
        let mut t = open(config(choice)).expect("open");
        tx.send(t.listen().expect("listen").to_string()).unwrap();
        let timeout = if busy { Some(Duration::ZERO) } else { None };
        let mut events = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            t.poll(&mut events, timeout, wake.as_raw_fd())
                .expect("poll");
            for ev in events.drain(..) {
                if let NetEvent::Frame {
                    conn,
                    kind,
                    payload,
                } = ev
                {
                    t.send(conn, kind, &payload).expect("echo");
                }
            }
        }
    });
    (rx.recv().unwrap(), handle)
}

fn round_trip(c: &mut Criterion) {
    let cores = all_cores().len();
    if cores < 2 {
        eprintln!("only {cores} core(s): cross_core variants run on one core");
    }
    let mut group = c.benchmark_group("round_trip_64B");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let uring = probe_io_uring();
    if let Err(e) = &uring {
        eprintln!("SKIPPED io_uring round trips: {e}");
    }
    for (name, choice) in [
        ("portable", TransportChoice::Portable),
        ("io_uring", TransportChoice::IoUring),
    ] {
        if choice == TransportChoice::IoUring && uring.is_err() {
            continue;
        }
        for (mode, busy, server_core) in [
            ("blocking/cross_core", false, 1),
            ("blocking/same_core", false, 0),
            ("busy/cross_core", true, 1),
        ] {
            let stop = Arc::new(AtomicBool::new(false));
            let server_wake = Arc::new(WakeFd::new().unwrap());
            let (addr, server) =
                echo_server(choice, server_core, busy, stop.clone(), server_wake.clone());
            // The client runs on the bench thread, pinned to CPU0 for this variant.
            pin(0);
            let wake = WakeFd::new().unwrap();
            let mut t: Box<dyn Transport> = open(config(choice)).expect("open");
            let conn = t.connect(&addr).expect("connect");
            let mut events = Vec::new();
            let timeout = if busy { Some(Duration::ZERO) } else { None };
            let payload = [0x42u8; 64];
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
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter(|| {
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
                })
            });
            stop.store(true, Ordering::Relaxed);
            server_wake.signal();
            server.join().unwrap();
        }
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
