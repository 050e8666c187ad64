//! The provider's part of a state transfer, between a donor and a joiner.
//!
//! MariaDB's SST scripts move the database; the provider moves what the database does not
//! hold: the certification index at the transfer point (so the joiner certifies later
//! writesets exactly as every other node) and, for IST, the writesets the joiner missed with
//! their verdicts. The donor sends them on a dedicated TCP connection to the joiner's
//! `ist.recv_addr`, as validated frames (`net`'s format, kind `StateTransfer`, the cluster's
//! hash), so a stray or corrupt stream is refused like any other network input.
//!
//! Both ends run on short-lived threads of their own, off the shard loops: the donor's shard 0
//! prepares everything at the transfer point (it must be taken there, in total order) and
//! hands it to the sender; the joiner's receiver hands the complete stream to shard 0 through
//! its inbox.

use crossbeam_channel::Sender;
use rkyv::rancor;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trireme_net::{encode_frame, ClusterHash, FrameDecoder, FrameKind};
use trireme_types::{HistoryId, Seqno};

/// What a joiner asks for, carried inside the group's `StateRequest` control entry.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct TransferRequest {
    /// The bytes MariaDB's `sst_request_cb` produced (method and address), for the donor's
    /// server.
    pub sst_request: Vec<u8>,
    /// Where the joiner listens for this stream (`ist.recv_addr`).
    pub stream_address: String,
}

impl TransferRequest {
    pub fn encode(&self) -> Vec<u8> {
        rkyv::to_bytes::<rancor::Error>(self)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<TransferRequest, String> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<TransferRequest, rancor::Error>(&aligned).map_err(|e| e.to_string())
    }
}

/// One writeset the joiner missed (IST), with the verdict every node gave it.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct MissedRecord {
    pub seqno: Seqno,
    /// `trireme_gcache::RecordKind` as its byte.
    pub kind: u8,
    /// The record as the GCache holds it (verdict header and writeset, see `ordering.rs`).
    pub bytes: Vec<u8>,
}

/// The messages of a transfer stream, in order: `Header`, `Index`, any `Missed`, `End`.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum StreamMsg {
    Header {
        history: HistoryId,
        position: Seqno,
        ist_from: Seqno,
    },
    /// An encoded `trireme_cert::CertSnapshot` at `position`.
    Index(Vec<u8>),
    Missed(MissedRecord),
    End,
}

impl StreamMsg {
    fn encode(&self) -> Vec<u8> {
        rkyv::to_bytes::<rancor::Error>(self)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<StreamMsg, String> {
        rkyv::from_bytes::<StreamMsg, rancor::Error>(bytes).map_err(|e| e.to_string())
    }
}

/// A complete stream as the joiner received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub history: HistoryId,
    pub position: Seqno,
    pub ist_from: Seqno,
    pub index: Vec<u8>,
    pub missed: Vec<MissedRecord>,
}

/// How long a joiner waits for the donor to connect and finish the stream.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest frame of a transfer stream (the index snapshot travels in one).
const MAX_STREAM_FRAME: u32 = 1 << 30;

/// Sends a stream to `address` on a thread of its own.
pub fn send(address: String, cluster: ClusterHash, messages: Vec<StreamMsg>) {
    let spawned = std::thread::Builder::new()
        .name("trireme-ist-send".into())
        .spawn(move || {
            let started = Instant::now();
            match send_blocking(&address, cluster, &messages) {
                Ok(bytes) => log::info!(
                    "State transfer stream to {address} sent: {} message(s), {bytes} bytes in {:?}",
                    messages.len(),
                    started.elapsed()
                ),
                Err(e) => log::error!("State transfer stream to {address} failed: {e}"),
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the state transfer sender: {e}");
    }
}

fn send_blocking(
    address: &str,
    cluster: ClusterHash,
    messages: &[StreamMsg],
) -> Result<usize, String> {
    let target = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    // The joiner binds before it asks, but allow for a slow start.
    let mut stream = loop {
        match TcpStream::connect_timeout(&target, Duration::from_secs(3)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                log::debug!("state transfer connect to {address}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("cannot connect to {address}: {e}")),
        }
    };
    stream.set_nodelay(true).ok();
    stream.set_write_timeout(Some(Duration::from_secs(60))).ok();
    let mut total = 0;
    for message in messages {
        let frame = encode_frame(FrameKind::StateTransfer, cluster, &message.encode())
            .map_err(|e| e.to_string())?;
        stream.write_all(&frame).map_err(|e| e.to_string())?;
        total += frame.len();
    }
    stream.flush().map_err(|e| e.to_string())?;
    Ok(total)
}

/// A joiner's receiver: bound before the request is made, run on a thread of its own, and
/// reporting the outcome through `done`.
pub fn receive(
    listener: TcpListener,
    cluster: ClusterHash,
    done: impl FnOnce(Result<Received, String>) + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name("trireme-ist-recv".into())
        .spawn(move || {
            done(receive_blocking(&listener, cluster));
        });
    if let Err(e) = spawned {
        log::error!("cannot start the state transfer receiver: {e}");
    }
}

fn receive_blocking(listener: &TcpListener, cluster: ClusterHash) -> Result<Received, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + STREAM_TIMEOUT;
    let (mut stream, peer) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err("no donor connected in time".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("accept failed: {e}")),
        }
    };
    stream.set_nonblocking(false).ok();
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
    log::info!("Receiving the state transfer stream from {peer}");
    let mut decoder = FrameDecoder::new(cluster, MAX_STREAM_FRAME);
    let mut frames = Vec::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut header = None;
    let mut index = None;
    let mut missed = Vec::new();
    loop {
        let n = stream
            .read(&mut buffer)
            .map_err(|e| format!("read from {peer}: {e}"))?;
        if n == 0 {
            return Err(format!("{peer} closed the stream before its end"));
        }
        decoder
            .feed(&buffer[..n], &mut frames)
            .map_err(|e| format!("bad frame from {peer}: {e}"))?;
        for frame in frames.drain(..) {
            if frame.kind != FrameKind::StateTransfer {
                return Err(format!("unexpected {:?} frame from {peer}", frame.kind));
            }
            match StreamMsg::decode(frame.payload.as_slice())? {
                StreamMsg::Header {
                    history,
                    position,
                    ist_from,
                } => header = Some((history, position, ist_from)),
                StreamMsg::Index(bytes) => index = Some(bytes),
                StreamMsg::Missed(record) => missed.push(record),
                StreamMsg::End => {
                    let (history, position, ist_from) =
                        header.ok_or("stream ended without a header")?;
                    return Ok(Received {
                        history,
                        position,
                        ist_from,
                        index: index.ok_or("stream ended without the certification index")?,
                        missed,
                    });
                }
            }
        }
    }
}

/// Binds the joiner's stream listener: `bind` (ist.recv_bind) or the advertised address.
pub fn bind(address: &str) -> Result<TcpListener, String> {
    TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))
}

/// Hands a receiver's result to shard 0 (through its inbox).
pub(crate) fn report_to(
    inbox: Sender<crate::Command>,
    waker: Arc<crate::sys::EventFd>,
) -> impl FnOnce(Result<Received, String>) + Send {
    move |result| {
        let _ = inbox.send(crate::Command::StreamReceived(Box::new(result)));
        waker.signal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_sent_to_a_bound_receiver_arrives_whole_and_in_order() {
        let listener = bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cluster = ClusterHash::of("c");
        let (tx, rx) = crossbeam_channel::bounded(1);
        receive(listener, cluster, move |r| {
            let _ = tx.send(r);
        });
        let messages = vec![
            StreamMsg::Header {
                history: HistoryId::NIL,
                position: Seqno(7),
                ist_from: Seqno(5),
            },
            StreamMsg::Index(vec![1, 2, 3]),
            StreamMsg::Missed(MissedRecord {
                seqno: Seqno(6),
                kind: 1,
                bytes: vec![9; 100_000],
            }),
            StreamMsg::Missed(MissedRecord {
                seqno: Seqno(7),
                kind: 1,
                bytes: vec![8],
            }),
            StreamMsg::End,
        ];
        send(address, cluster, messages);
        let received = rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
        assert_eq!(received.position, Seqno(7));
        assert_eq!(received.index, vec![1, 2, 3]);
        assert_eq!(
            received.missed.iter().map(|m| m.seqno).collect::<Vec<_>>(),
            vec![Seqno(6), Seqno(7)]
        );
        assert_eq!(received.missed[0].bytes.len(), 100_000);
    }

    #[test]
    fn a_stream_of_another_cluster_is_refused() {
        let listener = bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = crossbeam_channel::bounded(1);
        receive(listener, ClusterHash::of("mine"), move |r| {
            let _ = tx.send(r);
        });
        send(address, ClusterHash::of("theirs"), vec![StreamMsg::End]);
        let result = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let listener = bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cluster = ClusterHash::of("c");
        let (tx, rx) = crossbeam_channel::bounded(1);
        receive(listener, cluster, move |r| {
            let _ = tx.send(r);
        });
        // A header and nothing else, then the connection closes.
        send(
            address,
            cluster,
            vec![StreamMsg::Header {
                history: HistoryId::NIL,
                position: Seqno(1),
                ist_from: Seqno(0),
            }],
        );
        let result = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(result.unwrap_err().contains("before its end"));
    }
}
