//! The transport contract, written once and run against both implementations
//! (`portable::*` and `io_uring::*`; the io_uring variants print a loud SKIPPED line and pass
//! only when the probe says io_uring cannot be used here).
//!
//! Everything runs on loopback. Waits are bounded by `common::PATIENCE` so a broken transport
//! fails instead of hanging; nothing asserts how fast things are.

mod common;

use common::{config, connect_pair, uring_skipped, wait_event, Node, Rng, CLUSTER, PATIENCE};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use trireme_net::{
    encode_frame, CloseReason, ClusterHash, ConnId, ConnectFailure, FrameError, FrameKind,
    NetError, NetEvent, TransportChoice, TransportConfig, TransportKind,
};

macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {
        mod portable {
            $(
                #[test]
                fn $name() {
                    super::$name(trireme_net::TransportChoice::Portable)
                }
            )*
        }
        mod io_uring {
            $(
                #[test]
                fn $name() {
                    if super::uring_skipped(stringify!($name)) {
                        return;
                    }
                    super::$name(trireme_net::TransportChoice::IoUring)
                }
            )*
        }
    };
}

on_both_transports!(
    open_gives_the_requested_implementation,
    ten_thousand_frames_cross_loopback_in_order_both_ways_including_1_mib_frames,
    ipv6_loopback_works,
    a_host_name_works,
    closing_one_end_reports_closed_on_the_other,
    frames_queued_before_close_are_still_delivered,
    dropping_a_transport_reports_closed_on_the_other,
    a_killed_peer_process_is_reported_closed,
    a_peer_sending_garbage_is_dropped_without_disturbing_other_connections,
    frames_of_another_cluster_close_the_connection_with_wrong_cluster,
    oversized_frames_are_refused_by_send_and_by_the_receiver,
    poll_returns_when_the_wake_fd_is_signalled_from_another_thread,
    poll_with_a_zero_timeout_does_not_block,
    a_full_send_queue_refuses_instead_of_growing,
    connecting_to_a_closed_port_fails,
    connecting_to_a_peer_that_never_answers_times_out,
    sends_to_unknown_or_closed_connections_are_refused,
);

fn open_gives_the_requested_implementation(choice: TransportChoice) {
    let node = Node::new(config(choice));
    let expected = match choice {
        TransportChoice::IoUring => TransportKind::IoUring,
        _ => TransportKind::Portable,
    };
    assert_eq!(node.t.kind(), expected);
}

fn frame_payload(i: u32) -> Vec<u8> {
    // Every 500th frame is 1 MiB; the others vary from 0 to 299 bytes.
    let len = if i % 500 == 499 {
        1 << 20
    } else {
        (i as usize * 7) % 300
    };
    let mut p = vec![0u8; len.max(4)];
    p[..4].copy_from_slice(&i.to_le_bytes());
    for (j, b) in p.iter_mut().enumerate().skip(4) {
        *b = (i as usize + j) as u8;
    }
    p
}

fn ten_thousand_frames_cross_loopback_in_order_both_ways_including_1_mib_frames(
    choice: TransportChoice,
) {
    const N: u32 = 10_000;
    let (mut b, addr) = Node::listening(config(choice));
    let mut a = Node::new(config(choice));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    let (mut sent_a, mut sent_b, mut got_a, mut got_b) = (0u32, 0u32, 0u32, 0u32);
    let start = Instant::now();
    while got_a < N || got_b < N {
        assert!(
            start.elapsed() < PATIENCE * 3,
            "stuck at a:{got_a} b:{got_b}"
        );
        for (node, conn, sent) in [(&mut a, ca, &mut sent_a), (&mut b, cb, &mut sent_b)] {
            while *sent < N {
                match node.t.send(conn, FrameKind::Group, &frame_payload(*sent)) {
                    Ok(()) => *sent += 1,
                    Err(NetError::SendQueueFull { .. }) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        for (node, got) in [(&mut a, &mut got_a), (&mut b, &mut got_b)] {
            node.pump();
            while let Some(ev) = node.events.pop_front() {
                match ev {
                    NetEvent::Frame { kind, payload, .. } => {
                        assert_eq!(kind, FrameKind::Group);
                        assert_eq!(payload.as_slice(), &frame_payload(*got)[..], "frame {got}");
                        assert_eq!(payload.as_ptr() as usize % 16, 0);
                        *got += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }
    let sa = a.t.stats();
    assert_eq!((sa.frames_out, sa.frames_in), (N as u64, N as u64));
    assert_eq!(sa.bytes_in, sa.bytes_out, "symmetric traffic");
    assert_eq!((sa.send_queue_bytes, sa.send_queue_frames), (0, 0));
}

/// Sends a frame each way and checks both arrive.
fn exchange(a: &mut Node, b: &mut Node, ca: ConnId, cb: ConnId) {
    a.t.send(ca, FrameKind::Group, b"ping").unwrap();
    let ev = wait_event(&mut [a, b], 1, "ping", |e| {
        matches!(e, NetEvent::Frame { .. })
    });
    assert!(
        matches!(&ev, NetEvent::Frame { conn, payload, .. } if *conn == cb && payload.as_slice() == b"ping"),
        "{ev:?}"
    );
    b.t.send(cb, FrameKind::Group, b"pong").unwrap();
    let ev = wait_event(&mut [a, b], 0, "pong", |e| {
        matches!(e, NetEvent::Frame { .. })
    });
    assert!(
        matches!(&ev, NetEvent::Frame { conn, payload, .. } if *conn == ca && payload.as_slice() == b"pong"),
        "{ev:?}"
    );
}

fn ipv6_loopback_works(choice: TransportChoice) {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED ipv6_loopback_works: this host has no IPv6 loopback");
        return;
    }
    let mut cfg = config(choice);
    cfg.listen = "tcp://[::1]:0".into();
    let (mut b, addr) = Node::listening(cfg);
    assert!(addr.starts_with("[::1]:"), "{addr}");
    let mut a = Node::new(config(choice));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    exchange(&mut a, &mut b, ca, cb);
}

fn a_host_name_works(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let port = addr.rsplit_once(':').unwrap().1;
    let mut a = Node::new(config(choice));
    // "localhost" may resolve to ::1 first, where nobody listens: the next address is tried.
    let (ca, cb) = connect_pair(&mut a, &mut b, &format!("localhost:{port}"));
    exchange(&mut a, &mut b, ca, cb);
}

fn closing_one_end_reports_closed_on_the_other(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut a = Node::new(config(choice));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    a.t.close(ca);
    let ev = wait_event(&mut [&mut a, &mut b], 1, "Closed", |e| {
        matches!(e, NetEvent::Closed { .. })
    });
    assert!(
        matches!(ev, NetEvent::Closed { conn, reason: CloseReason::PeerClosed } if conn == cb),
        "{ev:?}"
    );
    for _ in 0..20 {
        a.pump();
    }
    assert!(
        a.events.is_empty(),
        "no event for a local close: {:?}",
        a.events
    );
    assert_eq!(a.t.stats().connections, 0);
}

fn frames_queued_before_close_are_still_delivered(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut a = Node::new(config(choice));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    for i in 0..100u32 {
        a.t.send(ca, FrameKind::Group, &frame_payload(i)).unwrap();
    }
    a.t.close(ca);
    for i in 0..100u32 {
        let ev = wait_event(&mut [&mut a, &mut b], 1, "frame", |_| true);
        match ev {
            NetEvent::Frame { conn, payload, .. } if conn == cb => {
                assert_eq!(payload.as_slice(), &frame_payload(i)[..])
            }
            other => panic!("frame {i}: {other:?}"),
        }
    }
    let ev = wait_event(&mut [&mut a, &mut b], 1, "Closed", |_| true);
    assert!(
        matches!(
            ev,
            NetEvent::Closed {
                reason: CloseReason::PeerClosed,
                ..
            }
        ),
        "{ev:?}"
    );
}

fn dropping_a_transport_reports_closed_on_the_other(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut a = Node::new(config(choice));
    let (_ca, cb) = connect_pair(&mut a, &mut b, &addr);
    drop(a);
    let ev = wait_event(&mut [&mut b], 0, "Closed", |e| {
        matches!(e, NetEvent::Closed { .. })
    });
    assert!(
        matches!(ev, NetEvent::Closed { conn, .. } if conn == cb),
        "{ev:?}"
    );
}

/// Run by `a_killed_peer_process_is_reported_closed` in a child process: connects, sends one
/// frame, then waits to be killed.
#[test]
#[ignore = "helper run in a child process"]
fn child_holds_a_connection_until_killed() {
    let Ok(addr) = std::env::var("TRIREME_NET_CHILD_CONNECT") else {
        return;
    };
    let mut s = TcpStream::connect(addr).unwrap();
    let frame = encode_frame(FrameKind::Keepalive, ClusterHash::of(CLUSTER), b"").unwrap();
    s.write_all(&frame).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

fn a_killed_peer_process_is_reported_closed(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_a_connection_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("TRIREME_NET_CHILD_CONNECT", &addr)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let NetEvent::Accepted { conn, .. } = wait_event(&mut [&mut b], 0, "Accepted", |e| {
        matches!(e, NetEvent::Accepted { .. })
    }) else {
        unreachable!()
    };
    let ev = wait_event(&mut [&mut b], 0, "Keepalive", |e| {
        matches!(e, NetEvent::Frame { .. })
    });
    assert!(
        matches!(
            ev,
            NetEvent::Frame {
                kind: FrameKind::Keepalive,
                ..
            }
        ),
        "{ev:?}"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ev = wait_event(&mut [&mut b], 0, "Closed", |e| {
        matches!(e, NetEvent::Closed { .. })
    });
    assert!(
        matches!(ev, NetEvent::Closed { conn: c, reason: CloseReason::PeerClosed | CloseReason::Io(_) } if c == conn),
        "{ev:?}"
    );
}

fn a_peer_sending_garbage_is_dropped_without_disturbing_other_connections(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut a = Node::new(config(choice));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    let mut garbage = TcpStream::connect(&addr).unwrap();
    let NetEvent::Accepted { conn: cg, .. } =
        wait_event(&mut [&mut a, &mut b], 1, "Accepted", |e| {
            matches!(e, NetEvent::Accepted { .. })
        })
    else {
        unreachable!()
    };
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n and some more bytes")
        .unwrap();
    let ev = wait_event(&mut [&mut a, &mut b], 1, "Closed", |e| {
        matches!(e, NetEvent::Closed { .. })
    });
    assert!(
        matches!(ev, NetEvent::Closed { conn, reason: CloseReason::BadFrame(FrameError::BadMagic { .. }) } if conn == cg),
        "{ev:?}"
    );
    assert_eq!(b.t.stats().bad_frames, 1);
    // The garbage sender sees its connection closed.
    garbage.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(garbage.read(&mut buf), Ok(0) | Err(_)));
    // The good connection still works.
    exchange(&mut a, &mut b, ca, cb);
}

fn frames_of_another_cluster_close_the_connection_with_wrong_cluster(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut other = config(choice);
    other.cluster_name = "another-cluster".into();
    let mut a = Node::new(other);
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    a.t.send(ca, FrameKind::Group, b"hello").unwrap();
    let ev = wait_event(&mut [&mut a, &mut b], 1, "Closed", |e| {
        matches!(e, NetEvent::Closed { .. })
    });
    assert!(
        matches!(ev, NetEvent::Closed { conn, reason: CloseReason::BadFrame(FrameError::WrongCluster { .. }) } if conn == cb),
        "{ev:?}"
    );
    let ev = wait_event(&mut [&mut a, &mut b], 0, "Closed", |e| {
        matches!(e, NetEvent::Closed { .. })
    });
    assert!(
        matches!(ev, NetEvent::Closed { conn, .. } if conn == ca),
        "{ev:?}"
    );
}

fn oversized_frames_are_refused_by_send_and_by_the_receiver(choice: TransportChoice) {
    let mut small = config(choice);
    small.max_frame_bytes = 1000;
    let (mut b, addr) = Node::listening(small);
    let mut a = Node::new(config(choice));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    let err = b.t.send(cb, FrameKind::Group, &[0; 1001]).unwrap_err();
    assert!(
        matches!(
            err,
            NetError::FrameTooLarge {
                len: 1001,
                limit: 1000
            }
        ),
        "{err}"
    );
    a.t.send(ca, FrameKind::Group, &[0; 1000]).unwrap();
    a.t.send(ca, FrameKind::Group, &[0; 1001]).unwrap();
    let ev = wait_event(&mut [&mut a, &mut b], 1, "frame", |_| true);
    assert!(
        matches!(&ev, NetEvent::Frame { payload, .. } if payload.len() == 1000),
        "{ev:?}"
    );
    let ev = wait_event(&mut [&mut a, &mut b], 1, "Closed", |_| true);
    assert!(
        matches!(
            ev,
            NetEvent::Closed {
                reason: CloseReason::BadFrame(FrameError::TooLarge {
                    len: 1001,
                    limit: 1000
                }),
                ..
            }
        ),
        "{ev:?}"
    );
}

fn poll_returns_when_the_wake_fd_is_signalled_from_another_thread(choice: TransportChoice) {
    let (mut b, _addr) = Node::listening(config(choice));
    let wake = std::sync::Arc::new(trireme_net::WakeFd::new().unwrap());
    let signaller = {
        let wake = wake.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            wake.signal();
        })
    };
    let start = Instant::now();
    let mut events = Vec::new();
    // Without the signal this would wait for PATIENCE.
    b.t.poll(&mut events, Some(PATIENCE), wake.as_raw_fd())
        .unwrap();
    assert!(
        start.elapsed() < PATIENCE / 2,
        "poll slept through the wake-up"
    );
    assert!(events.is_empty());
    signaller.join().unwrap();
    // The signal was consumed: the next poll times out normally.
    let start = Instant::now();
    b.t.poll(
        &mut events,
        Some(Duration::from_millis(30)),
        wake.as_raw_fd(),
    )
    .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "wake fd was not drained"
    );
}

fn poll_with_a_zero_timeout_does_not_block(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut a = Node::new(config(choice));
    let _ = connect_pair(&mut a, &mut b, &addr);
    // A watchdog wakes the poll in case it blocks, so the test fails instead of hanging.
    let wake = std::sync::Arc::new(trireme_net::WakeFd::new().unwrap());
    let watchdog = {
        let wake = wake.clone();
        std::thread::spawn(move || {
            std::thread::sleep(PATIENCE / 4);
            wake.signal();
        })
    };
    let start = Instant::now();
    let mut events = Vec::new();
    for _ in 0..100 {
        b.t.poll(&mut events, Some(Duration::ZERO), wake.as_raw_fd())
            .unwrap();
    }
    assert!(start.elapsed() < PATIENCE / 4, "poll(0) blocked");
    assert!(events.is_empty(), "{events:?}");
    watchdog.join().unwrap();
}

fn a_full_send_queue_refuses_instead_of_growing(choice: TransportChoice) {
    const LIMIT: usize = 1 << 20;
    let mut cfg = config(choice);
    cfg.max_frame_bytes = 64 << 10;
    cfg.send_queue_limit_bytes = LIMIT;
    let mut a = Node::new(cfg);
    // A peer that accepts and never reads.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let ca =
        a.t.connect(&silent.local_addr().unwrap().to_string())
            .unwrap();
    let (_held, _) = silent.accept().unwrap();
    wait_event(&mut [&mut a], 0, "Connected", |e| {
        matches!(e, NetEvent::Connected { .. })
    });
    let frame = vec![7u8; 60_000];
    let mut sent = 0usize;
    let refused = loop {
        match a.t.send(ca, FrameKind::Group, &frame) {
            Ok(()) => sent += 1,
            Err(NetError::SendQueueFull {
                queued_bytes,
                limit_bytes,
                ..
            }) => {
                assert_eq!(limit_bytes, LIMIT);
                assert!(queued_bytes <= LIMIT);
                break queued_bytes;
            }
            Err(e) => panic!("{e}"),
        }
        a.pump(); // let the kernel take what it will
        assert!(sent < 10_000, "600 MB accepted: the queue is not bounded");
    };
    let stats = a.t.stats();
    assert!(
        stats.send_queue_bytes <= LIMIT && stats.send_queue_bytes == refused,
        "{stats:?}"
    );
    assert_eq!(stats.send_queue_refusals, 1);
    // Refusals leave the queue as it was.
    assert!(a.t.send(ca, FrameKind::Group, &frame).is_err());
    assert_eq!(a.t.stats().send_queue_bytes, refused);
}

fn connecting_to_a_closed_port_fails(choice: TransportChoice) {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut a = Node::new(config(choice));
    let c = a.t.connect(&format!("127.0.0.1:{port}")).unwrap();
    let ev = wait_event(&mut [&mut a], 0, "ConnectFailed", |_| true);
    match ev {
        NetEvent::ConnectFailed {
            conn,
            reason: ConnectFailure::Io(f),
        } if conn == c => {
            assert_eq!(f.kind, std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("{other:?}"),
    }
}

fn connecting_to_a_peer_that_never_answers_times_out(choice: TransportChoice) {
    // A listener whose accept queue is full drops SYNs: a connect to it hangs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
        if fillers.len() > 5_000 {
            eprintln!(
                "SKIPPED connecting_to_a_peer_that_never_answers_times_out: backlog never filled"
            );
            return;
        }
    }
    let mut cfg = config(choice);
    cfg.connect_timeout = Duration::from_millis(300);
    let mut a = Node::new(cfg);
    let c = a.t.connect(&addr.to_string()).unwrap();
    let ev = wait_event(&mut [&mut a], 0, "ConnectFailed", |_| true);
    assert!(
        matches!(ev, NetEvent::ConnectFailed { conn, reason: ConnectFailure::TimedOut } if conn == c),
        "{ev:?}"
    );
}

fn sends_to_unknown_or_closed_connections_are_refused(choice: TransportChoice) {
    let (mut b, addr) = Node::listening(config(choice));
    let mut a = Node::new(config(choice));
    let (ca, _cb) = connect_pair(&mut a, &mut b, &addr);
    assert!(matches!(
        a.t.send(ConnId(999), FrameKind::Group, b"x"),
        Err(NetError::UnknownConn(_))
    ));
    a.t.close(ca);
    assert!(matches!(
        a.t.send(ca, FrameKind::Group, b"x"),
        Err(NetError::UnknownConn(_))
    ));
    a.t.close(ca); // twice is harmless
}

#[test]
fn io_uring_sends_large_frames_zero_copy_until_the_kernel_reports_copying() {
    if uring_skipped("io_uring_sends_large_frames_zero_copy_until_the_kernel_reports_copying") {
        return;
    }
    let mut cfg = config(TransportChoice::IoUring);
    cfg.zero_copy_min_bytes = 64 << 10;
    let (mut b, addr) = Node::listening(cfg.clone());
    let mut a = Node::new(cfg);
    let (ca, _cb) = connect_pair(&mut a, &mut b, &addr);
    let big = vec![3u8; 256 << 10];
    for _ in 0..8 {
        a.t.send(ca, FrameKind::StateTransfer, &big).unwrap();
        a.t.send(ca, FrameKind::Group, b"small frames never go zero-copy")
            .unwrap();
    }
    for _ in 0..16 {
        let ev = wait_event(&mut [&mut a, &mut b], 1, "frame", |_| true);
        assert!(matches!(ev, NetEvent::Frame { .. }), "{ev:?}");
    }
    // Let the notifications arrive.
    let start = Instant::now();
    while a.t.stats().zero_copy_copied + a.t.stats().zero_copy_fallbacks == 0
        && start.elapsed() < PATIENCE
    {
        a.pump();
    }
    let s = a.t.stats();
    eprintln!("{s:?}");
    assert!(
        s.zero_copy_sends >= 1,
        "the first large frame goes out with SendZc: {s:?}"
    );
    // On loopback the kernel copies: the socket switches to plain sends. (ENOMEM, when locked
    // memory is short, also ends zero-copy for the socket.)
    assert!(
        s.zero_copy_copied >= 1 || s.zero_copy_fallbacks >= 1,
        "{s:?}"
    );
    assert!(
        s.zero_copy_fallbacks >= 1,
        "later large frames went out plain: {s:?}"
    );
    assert!(s.zero_copy_sends < 8, "{s:?}");
}

#[test]
fn open_auto_picks_io_uring_when_the_probe_succeeds_and_portable_otherwise() {
    let node = Node::new(config(TransportChoice::Auto));
    let expected = match trireme_net::probe_io_uring() {
        Ok(()) => TransportKind::IoUring,
        Err(_) => TransportKind::Portable,
    };
    assert_eq!(node.t.kind(), expected);
}

#[test]
fn invalid_configurations_are_refused_naming_the_values() {
    let mut c = TransportConfig::new(CLUSTER, "tcp://127.0.0.1:0");
    c.send_queue_limit_bytes = 10;
    let err = trireme_net::open(c).err().expect("refused");
    assert!(
        err.to_string().contains("send_queue_limit_bytes 10"),
        "{err}"
    );
    let mut c = TransportConfig::new(CLUSTER, "tcp://127.0.0.1:0");
    c.listen = "udp://0.0.0.0:1".into();
    let mut t = trireme_net::open(c).unwrap();
    assert!(matches!(t.listen(), Err(NetError::BadAddress { .. })));
}

#[test]
fn random_frame_sizes_survive_both_transports_talking_to_each_other() {
    if uring_skipped("random_frame_sizes_survive_both_transports_talking_to_each_other") {
        return;
    }
    let mut rng = Rng::from_env("random_frame_sizes_survive_both_transports_talking_to_each_other");
    let (mut b, addr) = Node::listening(config(TransportChoice::Portable));
    let mut a = Node::new(config(TransportChoice::IoUring));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    let payloads: Vec<Vec<u8>> = (0..300)
        .map(|_| {
            let len = rng.below(200_000);
            rng.bytes(len)
        })
        .collect();
    for p in &payloads {
        a.t.send(ca, FrameKind::Group, p).unwrap();
        b.t.send(cb, FrameKind::Group, p).unwrap();
    }
    for p in &payloads {
        for who in [1, 0] {
            let ev = wait_event(&mut [&mut a, &mut b], who, "frame", |_| true);
            assert!(
                matches!(&ev, NetEvent::Frame { payload, .. } if payload.as_slice() == &p[..]),
                "{ev:?}"
            );
        }
    }
}

/// Run by `without_locked_memory_io_uring_is_refused_and_auto_falls_back_to_portable` in a
/// child process that has no CAP_IPC_LOCK and a locked-memory limit of 0.
#[test]
#[ignore = "helper run in a child process"]
fn child_without_locked_memory_checks_the_fallback() {
    if std::env::var("TRIREME_NET_CHILD_MEMLOCK").is_err() {
        return;
    }
    let err = trireme_net::probe_io_uring().expect_err("a ring was created without locked memory");
    eprintln!("probe: {err}");
    assert!(err.to_string().contains("locked memory"), "{err}");
    assert!(matches!(
        trireme_net::open(config(TransportChoice::IoUring)),
        Err(NetError::IoUringUnavailable(_))
    ));
    let (mut b, addr) = Node::listening(config(TransportChoice::Auto));
    assert_eq!(b.t.kind(), TransportKind::Portable);
    let mut a = Node::new(config(TransportChoice::Auto));
    let (ca, cb) = connect_pair(&mut a, &mut b, &addr);
    exchange(&mut a, &mut b, ca, cb);
    println!("CHILD-CHECKED");
}

/// Runs `helper` (an ignored test of this binary) in a child process without CAP_IPC_LOCK
/// and with RLIMIT_MEMLOCK = `memlock`; returns false (after a SKIPPED line) when the tools
/// to do that are missing.
fn run_without_ipc_lock(test: &str, helper: &str, memlock: &str) -> bool {
    let tools = ["prlimit", "setpriv"].iter().all(|t| {
        std::process::Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !tools {
        eprintln!("SKIPPED {test}: prlimit/setpriv not installed");
        return false;
    }
    let out = std::process::Command::new("prlimit")
        .arg(format!("--memlock={memlock}:{memlock}"))
        .args([
            "setpriv",
            "--bounding-set",
            "-ipc_lock",
            "--inh-caps",
            "-ipc_lock",
            "--",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", helper, "--ignored", "--nocapture"])
        .env("TRIREME_NET_CHILD_MEMLOCK", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("setpriv:") || stderr.contains("prlimit:") {
        eprintln!("SKIPPED {test}: cannot drop CAP_IPC_LOCK here: {stderr}");
        return false;
    }
    assert!(
        out.status.success() && stdout.contains("CHILD-CHECKED"),
        "{stdout}\n{stderr}"
    );
    true
}

#[test]
fn without_locked_memory_io_uring_is_refused_and_auto_falls_back_to_portable() {
    // Ring memory is charged to RLIMIT_MEMLOCK unless the process holds CAP_IPC_LOCK (root
    // does): the child has neither the capability nor any locked memory.
    run_without_ipc_lock(
        "without_locked_memory_io_uring_is_refused_and_auto_falls_back_to_portable",
        "child_without_locked_memory_checks_the_fallback",
        "0",
    );
}

/// Run by `zero_copy_sends_that_hit_the_locked_memory_limit_go_out_plain` in a child with
/// 256 KiB of locked memory: enough for a small ring, not for pinning 4 MiB frames.
#[test]
#[ignore = "helper run in a child process"]
fn child_with_little_locked_memory_sends_large_frames() {
    if std::env::var("TRIREME_NET_CHILD_MEMLOCK").is_err() {
        return;
    }
    let mut cfg = config(TransportChoice::IoUring);
    cfg.ring_entries = 32;
    cfg.zero_copy_min_bytes = 64 << 10;
    let mut a = match trireme_net::open(cfg) {
        Ok(t) => Node::from_transport(t),
        Err(e) => panic!("a 32-entry ring should fit in 256 KiB: {e}"),
    };
    let (mut b, addr) = Node::listening(config(TransportChoice::Portable));
    let (ca, _cb) = connect_pair(&mut a, &mut b, &addr);
    let big: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    for _ in 0..4 {
        a.t.send(ca, FrameKind::StateTransfer, &big).unwrap();
    }
    for _ in 0..4 {
        let ev = wait_event(&mut [&mut a, &mut b], 1, "frame", |_| true);
        assert!(
            matches!(&ev, NetEvent::Frame { payload, .. } if payload.as_slice() == &big[..]),
            "{ev:?}"
        );
    }
    let s = a.t.stats();
    eprintln!("{s:?}");
    // Pinning a 4 MiB frame cannot fit 256 KiB: every SendZc failed (none counted as sent),
    // was re-sent plain (the frames above arrived intact) and ended zero-copy on the socket.
    assert_eq!(s.zero_copy_sends, 0, "{s:?}");
    assert!(s.zero_copy_fallbacks >= 4, "{s:?}");
    println!("CHILD-CHECKED");
}

#[test]
fn zero_copy_sends_that_hit_the_locked_memory_limit_go_out_plain() {
    if uring_skipped("zero_copy_sends_that_hit_the_locked_memory_limit_go_out_plain") {
        return;
    }
    run_without_ipc_lock(
        "zero_copy_sends_that_hit_the_locked_memory_limit_go_out_plain",
        "child_with_little_locked_memory_sends_large_frames",
        "262144",
    );
}

#[test]
fn io_uring_recovers_when_every_receive_buffer_is_in_use() {
    if uring_skipped("io_uring_recovers_when_every_receive_buffer_is_in_use") {
        return;
    }
    // Two 4 KiB buffers for four peers sending 256 KiB frames at once: receives run dry
    // (ENOBUFS ends the multishot recv), are re-armed once buffers return, and nothing is
    // lost or reordered.
    let mut cfg = config(TransportChoice::IoUring);
    cfg.recv_buffer_count = 2;
    cfg.recv_buffer_bytes = 4096;
    let (mut b, addr) = Node::listening(cfg);
    let mut senders: Vec<(Node, ConnId)> = Vec::new();
    for _ in 0..4 {
        let mut a = Node::new(config(TransportChoice::Portable));
        let (ca, _) = connect_pair(&mut a, &mut b, &addr);
        senders.push((a, ca));
    }
    let payload = |s: usize, i: usize| vec![(s * 16 + i) as u8; 256 << 10];
    for (s, (a, ca)) in senders.iter_mut().enumerate() {
        for i in 0..8 {
            a.t.send(*ca, FrameKind::Group, &payload(s, i)).unwrap();
        }
    }
    let mut got = std::collections::HashMap::<ConnId, usize>::new();
    let mut order = Vec::new();
    let start = Instant::now();
    while got.values().sum::<usize>() < 32 {
        assert!(start.elapsed() < PATIENCE, "{got:?}");
        for (a, _) in &mut senders {
            a.pump();
        }
        b.pump();
        while let Some(ev) = b.events.pop_front() {
            match ev {
                NetEvent::Frame { conn, payload, .. } => {
                    let n = got.entry(conn).or_default();
                    order.push((conn, *n, payload[0]));
                    assert!(payload.iter().all(|&x| x == payload[0]));
                    *n += 1;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    // Per connection, frames arrive in the order sent (first byte = sender * 16 + index).
    for (conn, index, first) in order {
        assert_eq!(usize::from(first) % 16, index, "{conn}");
    }
    let s = b.t.stats();
    eprintln!("{s:?}");
    assert!(
        s.recv_buffers_exhausted >= 1,
        "the pool never ran dry: {s:?}"
    );
}
