//! Shards 1..N: each owns one slice of the certification index (by key hash) and one slice
//! of the GCache (by seqno stripe), and does what shard 0 asks, in the order it asks.
//!
//! The protocol keeps certification deterministic whatever the shard count: for a writeset
//! that touches slice k, shard 0 sends `Check` and waits for the `Partial`, merges the partials
//! of every slice, then sends `Apply` with the verdict before it sends the next `Check`. The
//! inbox is FIFO, so slice k always sees writesets in seqno order and never checks one before
//! the previous verdict is recorded. GCache appends are fire-and-forget: they are not on the
//! commit path.

use crate::sys::EventFd;
use crate::transfer::MissedRecord;
use crate::Board;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use trireme_cert::{CertSlice, CertSnapshot, CheckInput, Partial, SnapshotRecord, Verdict};
use trireme_gcache::{GCacheSlice, RecordKind};
use trireme_types::{Seqno, Writeset};

pub(crate) enum ShardCommand {
    /// A new session's certification slice, owned until `Detach`.
    AttachCert {
        cert: CertSlice,
    },
    /// The GCache slice this shard owns until `Detach` (boxed: sent once per session, it
    /// would otherwise make every command on the hot path as large as itself).
    AttachGCache {
        gcache: Box<GCacheSlice>,
    },
    Check {
        seqno: Seqno,
        ws: Arc<Writeset>,
    },
    Apply {
        seqno: Seqno,
        ws: Arc<Writeset>,
        verdict: Verdict,
    },
    Purge {
        below: Seqno,
    },
    Append {
        seqno: Seqno,
        kind: RecordKind,
        bytes: Arc<Vec<u8>>,
    },
    Release {
        upto: Seqno,
    },
    /// A joiner's imported index: keep the records this slice owns.
    Import {
        snapshot: Arc<CertSnapshot>,
    },
    /// A donor's index export: send this slice's records back.
    Export {
        reply: Sender<Vec<SnapshotRecord>>,
    },
    /// Copies this slice's records in `[from, to]` (a donor preparing IST).
    Read {
        from: Seqno,
        to: Seqno,
        reply: Sender<Vec<MissedRecord>>,
    },
    /// End of session: close the GCache slice, drop the cert slice, then acknowledge.
    Detach {
        done: Sender<()>,
    },
    Stop,
}

/// Shard 0's handle on shard k.
pub(crate) struct ShardLink {
    pub index: u32,
    commands: Sender<ShardCommand>,
    partials: Receiver<Partial>,
    waker: Arc<EventFd>,
}

impl ShardLink {
    pub fn send(&self, command: ShardCommand) {
        if self.commands.send(command).is_ok() {
            self.waker.signal();
        }
    }

    /// The partial verdict shard k computed for the last `Check`.
    pub fn partial(&self) -> Option<Partial> {
        self.partials.recv().ok()
    }

    /// Shard k's part of the certification index (a donor at the transfer point).
    pub fn export(&self) -> Vec<SnapshotRecord> {
        let (reply, wait) = bounded(1);
        self.send(ShardCommand::Export { reply });
        wait.recv_timeout(Duration::from_secs(30))
            .unwrap_or_default()
    }

    /// Shard k's GCache records in `[from, to]`.
    pub fn read(&self, from: Seqno, to: Seqno) -> Vec<MissedRecord> {
        let (reply, wait) = bounded(1);
        self.send(ShardCommand::Read { from, to, reply });
        wait.recv_timeout(Duration::from_secs(60))
            .unwrap_or_default()
    }

    /// Ends the session on shard k and waits until its GCache slice is closed.
    pub fn detach(&self) {
        let (done, wait) = bounded(1);
        self.send(ShardCommand::Detach { done });
        let _ = wait.recv_timeout(Duration::from_secs(30));
    }
}

/// Starts shard `index` and returns the link to it.
pub(crate) fn spawn(
    index: u32,
    board: Arc<Board>,
    core: Option<usize>,
) -> std::io::Result<(ShardLink, JoinHandle<()>)> {
    let (commands_tx, commands) = bounded(crate::INBOX_CAPACITY);
    let (partials_tx, partials) = bounded(1);
    let waker = Arc::new(EventFd::new()?);
    let shard = Shard {
        index,
        commands,
        partials: partials_tx,
        board,
        cert: None,
        gcache: None,
    };
    let thread_waker = waker.clone();
    let handle = std::thread::Builder::new()
        .name(format!("trireme-shard{index}"))
        .spawn(move || shard.run(core, thread_waker))?;
    Ok((
        ShardLink {
            index,
            commands: commands_tx,
            partials,
            waker,
        },
        handle,
    ))
}

struct Shard {
    index: u32,
    commands: Receiver<ShardCommand>,
    partials: Sender<Partial>,
    board: Arc<Board>,
    cert: Option<CertSlice>,
    gcache: Option<GCacheSlice>,
}

impl Shard {
    fn run(mut self, core: Option<usize>, _waker: Arc<EventFd>) {
        if let Some(id) = core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                log::warn!("could not pin shard {} to core {id}", self.index);
            }
        }
        loop {
            // Shard k has no I/O and no timers: it sleeps in the channel until work arrives.
            let command = match self.commands.recv_timeout(Duration::from_secs(1)) {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(command)));
            match outcome {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => {
                    log::error!(
                        "internal error on shard {}; its slices are dropped",
                        self.index
                    );
                    self.cert = None;
                    self.gcache = None;
                }
            }
        }
        self.close_gcache();
    }

    /// Handles one command; false means stop.
    fn handle(&mut self, command: ShardCommand) -> bool {
        match command {
            ShardCommand::AttachCert { cert } => {
                self.cert = Some(cert);
                self.publish_index_size();
            }
            ShardCommand::AttachGCache { gcache } => {
                self.close_gcache();
                self.board
                    .publish_gcache_range(self.index as usize, gcache.range());
                self.gcache = Some(*gcache);
            }
            ShardCommand::Check { seqno, ws } => {
                let partial = match &self.cert {
                    Some(slice) => slice.check(&CheckInput::new(seqno, &ws)),
                    None => Partial::empty(self.index, seqno),
                };
                // Shard 0 is waiting for exactly this answer.
                let _ = self.partials.send(partial);
            }
            ShardCommand::Apply { seqno, ws, verdict } => {
                if let Some(slice) = &mut self.cert {
                    slice.apply(&CheckInput::new(seqno, &ws), &verdict);
                    self.publish_index_size();
                }
            }
            ShardCommand::Import { snapshot } => {
                if let Some(slice) = &mut self.cert {
                    slice.import(&snapshot);
                    self.publish_index_size();
                }
            }
            ShardCommand::Export { reply } => {
                let mut records = Vec::new();
                if let Some(slice) = &self.cert {
                    slice.export_into(&mut records);
                }
                let _ = reply.send(records);
            }
            ShardCommand::Read { from, to, reply } => {
                let records = match &self.gcache {
                    Some(gcache) => read_slice(gcache, from, to),
                    None => Vec::new(),
                };
                let _ = reply.send(records);
            }
            ShardCommand::Purge { below } => {
                if let Some(slice) = &mut self.cert {
                    slice.purge_below(below);
                    self.publish_index_size();
                }
            }
            ShardCommand::Append { seqno, kind, bytes } => {
                if let Some(gcache) = &mut self.gcache {
                    if let Err(e) = gcache.append(seqno, kind, &bytes) {
                        log::warn!(
                            "GCache slice {} append of seqno {seqno} failed: {e}",
                            self.index
                        );
                    }
                    self.board
                        .publish_gcache_range(self.index as usize, gcache.range());
                }
            }
            ShardCommand::Release { upto } => {
                if let Some(gcache) = &mut self.gcache {
                    gcache.release_upto(upto);
                }
            }
            ShardCommand::Detach { done } => {
                self.cert = None;
                self.close_gcache();
                self.publish_index_size();
                let _ = done.send(());
            }
            ShardCommand::Stop => return false,
        }
        true
    }

    fn publish_index_size(&self) {
        let size = self
            .cert
            .as_ref()
            .map(|c| c.key_count() as u64)
            .unwrap_or(0);
        if let Some(slot) = self.board.slice_index_sizes.get(self.index as usize) {
            slot.store(size, Ordering::Relaxed);
        }
    }

    fn close_gcache(&mut self) {
        if let Some(gcache) = self.gcache.take() {
            self.board.publish_gcache_range(self.index as usize, None);
            if let Err(e) = gcache.close() {
                log::warn!("GCache slice {} close failed: {e}", self.index);
            }
        }
    }
}

/// The records of `slice` in `[from, to]` it holds, in seqno order (a corrupt record ends the
/// copy: the donor then falls back to SST).
pub(crate) fn read_slice(slice: &GCacheSlice, from: Seqno, to: Seqno) -> Vec<MissedRecord> {
    let mut out = Vec::new();
    let mut seqno = from;
    while seqno <= to {
        if slice.owns(seqno) {
            match slice.get(seqno) {
                Ok(Some(record)) => out.push(MissedRecord {
                    seqno,
                    kind: record.kind.to_byte(),
                    bytes: record.payload.to_vec(),
                }),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("GCache record {seqno} unreadable: {e}");
                    break;
                }
            }
        }
        seqno = seqno.next();
    }
    out
}
