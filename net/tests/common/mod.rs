//! Test helpers: a seeded PRNG (TRIREME_SEED replays) and a transport harness that runs the
//! same test against both implementations.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use trireme_net::{
    open, probe_io_uring, ConnId, NetEvent, Transport, TransportChoice, TransportConfig, WakeFd,
};

/// SplitMix64: small, seedable, good enough for test inputs.
pub struct Rng(u64);

impl Rng {
    /// Seeds from TRIREME_SEED or the clock, and prints the seed so a failure can be replayed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("TRIREME_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: TRIREME_SEED={seed}");
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

pub const CLUSTER: &str = "trireme-test";

/// Whether the io_uring variant of `test` must be skipped here (said loudly).
pub fn uring_skipped(test: &str) -> bool {
    match probe_io_uring() {
        Ok(()) => false,
        Err(e) => {
            eprintln!("SKIPPED io_uring::{test}: io_uring unavailable here ({e})");
            true
        }
    }
}

pub fn config(choice: TransportChoice) -> TransportConfig {
    let mut c = TransportConfig::new(CLUSTER, "tcp://127.0.0.1:0");
    c.choice = choice;
    c
}

/// A transport, its wake fd and the events it reported and nobody consumed yet.
pub struct Node {
    pub t: Box<dyn Transport>,
    pub wake: WakeFd,
    pub events: VecDeque<NetEvent>,
    scratch: Vec<NetEvent>,
}

impl Node {
    pub fn new(config: TransportConfig) -> Node {
        Node::from_transport(open(config).expect("open transport"))
    }

    pub fn from_transport(t: Box<dyn Transport>) -> Node {
        Node {
            t,
            wake: WakeFd::new().expect("eventfd"),
            events: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    pub fn listening(config: TransportConfig) -> (Node, String) {
        let mut n = Node::new(config);
        let addr = n.t.listen().expect("listen");
        (n, addr.to_string())
    }

    /// One non-blocking poll.
    pub fn pump(&mut self) {
        self.t
            .poll(
                &mut self.scratch,
                Some(Duration::ZERO),
                self.wake.as_raw_fd(),
            )
            .expect("poll");
        self.events.extend(self.scratch.drain(..));
    }

    /// Removes and returns the first event matching `pred`, if reported already.
    pub fn take(&mut self, mut pred: impl FnMut(&NetEvent) -> bool) -> Option<NetEvent> {
        let i = self.events.iter().position(&mut pred)?;
        self.events.remove(i)
    }
}

/// How long a test waits for something that should happen at once before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Pumps every node until `pred` finds an event on node `who`; panics after PATIENCE.
pub fn wait_event(
    nodes: &mut [&mut Node],
    who: usize,
    what: &str,
    mut pred: impl FnMut(&NetEvent) -> bool,
) -> NetEvent {
    let start = Instant::now();
    loop {
        if let Some(e) = nodes[who].take(&mut pred) {
            return e;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for {what}; events: {:?}",
            nodes[who].events
        );
        for n in nodes.iter_mut() {
            n.pump();
        }
        std::thread::yield_now();
    }
}

/// `a` connects to `b` (listening at `addr`); returns (conn on a, conn on b).
pub fn connect_pair(a: &mut Node, b: &mut Node, addr: &str) -> (ConnId, ConnId) {
    let ca = a.t.connect(addr).expect("connect");
    let ev = wait_event(
        &mut [a, b],
        0,
        "Connected",
        |e| matches!(e, NetEvent::Connected { conn, .. } | NetEvent::ConnectFailed { conn, .. } if *conn == ca),
    );
    assert!(matches!(ev, NetEvent::Connected { .. }), "{ev:?}");
    let NetEvent::Accepted { conn: cb, .. } = wait_event(&mut [a, b], 1, "Accepted", |e| {
        matches!(e, NetEvent::Accepted { .. })
    }) else {
        unreachable!()
    };
    (ca, cb)
}
