//! What both transports keep per connection, apart from the socket: the stream layer, the
//! frame decoder and the bounded send queue.
//!
//! Owns: [`Link`] (receive path: wire bytes -> layer -> decoder -> frames; send path:
//! payload -> frame -> layer -> queue) and [`SendQueue`].
//!
//! Invariants:
//! - the queue never holds more than `limit_bytes` (in-flight chunks included): `push` refuses
//!   instead of growing, and a refused push leaves the queue unchanged;
//! - chunks leave the queue front first, and a chunk taken for sending is accounted until the
//!   transport reports it sent (`complete`), so the limit also covers bytes the kernel has not
//!   taken yet;
//! - small frames are coalesced into one chunk (fewer syscalls/SQEs), a frame of
//!   [`COALESCE_MAX_BYTES`] or more gets a chunk of its own (it may go out zero-copy).

use crate::frame::{
    encode_frame, frame_len, ClusterHash, Frame, FrameDecoder, FrameError, FrameKind,
};
use crate::stream::{LayerError, StreamLayer};
use std::collections::VecDeque;

/// Frames are appended to the last queued chunk while it stays below this size.
pub const COALESCE_MAX_BYTES: usize = 64 * 1024;

/// Bytes ready for the socket, and how many frames they finish.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub bytes: Vec<u8>,
    pub frames: usize,
}

#[derive(Debug)]
pub(crate) struct SendQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written (portable path).
    head_written: usize,
    /// Bytes queued or taken and not yet reported sent.
    accounted_bytes: usize,
    accounted_frames: usize,
    limit_bytes: usize,
}

/// The queue is full: the frame was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueFull {
    pub queued_bytes: usize,
    pub limit_bytes: usize,
}

impl SendQueue {
    pub fn new(limit_bytes: usize) -> SendQueue {
        SendQueue {
            chunks: VecDeque::new(),
            head_written: 0,
            accounted_bytes: 0,
            accounted_frames: 0,
            limit_bytes,
        }
    }

    pub fn queued_bytes(&self) -> usize {
        self.accounted_bytes
    }

    pub fn queued_frames(&self) -> usize {
        self.accounted_frames
    }

    /// Whether chunks wait in the queue (not counting a taken one).
    pub fn has_chunks(&self) -> bool {
        !self.chunks.is_empty()
    }

    pub fn check_room(&self, wire_len: usize) -> Result<(), QueueFull> {
        if self.accounted_bytes.saturating_add(wire_len) > self.limit_bytes {
            return Err(QueueFull {
                queued_bytes: self.accounted_bytes,
                limit_bytes: self.limit_bytes,
            });
        }
        Ok(())
    }

    /// Queues wire bytes finishing `frames` frames.
    pub fn push(&mut self, bytes: Vec<u8>, frames: usize) -> Result<(), QueueFull> {
        self.check_room(bytes.len())?;
        self.accounted_bytes += bytes.len();
        self.accounted_frames += frames;
        let coalesce = bytes.len() < COALESCE_MAX_BYTES
            && self.chunks.len() > usize::from(self.head_written > 0)
            && self
                .chunks
                .back()
                .is_some_and(|c| c.bytes.len() + bytes.len() <= COALESCE_MAX_BYTES);
        match self.chunks.back_mut() {
            Some(last) if coalesce => {
                last.bytes.extend_from_slice(&bytes);
                last.frames += frames;
            }
            _ => self.chunks.push_back(Chunk { bytes, frames }),
        }
        Ok(())
    }

    /// Portable path: the unwritten bytes of the front chunk.
    pub fn front(&self) -> Option<&[u8]> {
        self.chunks.front().map(|c| &c.bytes[self.head_written..])
    }

    /// Portable path: `n` bytes of the front were written; returns the frames that finished.
    pub fn advance(&mut self, n: usize) -> usize {
        let Some(front) = self.chunks.front() else {
            return 0;
        };
        self.head_written += n;
        self.accounted_bytes = self.accounted_bytes.saturating_sub(n);
        if self.head_written >= front.bytes.len() {
            let frames = front.frames;
            self.accounted_frames = self.accounted_frames.saturating_sub(frames);
            self.chunks.pop_front();
            self.head_written = 0;
            return frames;
        }
        0
    }

    /// io_uring path: moves the front chunk out; it stays accounted until `complete`.
    /// Never called while the portable `head_written` is non-zero (the two paths do not mix).
    pub fn take(&mut self) -> Option<Chunk> {
        debug_assert_eq!(self.head_written, 0);
        self.chunks.pop_front()
    }

    /// io_uring path: a taken chunk's remainder must go out before anything else.
    pub fn put_back_front(&mut self, chunk: Chunk) {
        self.chunks.push_front(chunk);
    }

    /// io_uring path: `bytes` of taken chunks reached the kernel, finishing `frames` frames.
    pub fn complete(&mut self, bytes: usize, frames: usize) {
        self.accounted_bytes = self.accounted_bytes.saturating_sub(bytes);
        self.accounted_frames = self.accounted_frames.saturating_sub(frames);
    }
}

/// Why a link refused received bytes.
#[derive(Debug)]
pub(crate) enum ReceiveError {
    Frame(FrameError),
    Layer(LayerError),
}

/// Why a link refused a frame to send.
#[derive(Debug)]
pub(crate) enum EnqueueError {
    TooLarge { len: usize, limit: u32 },
    Full(QueueFull),
    Layer(LayerError),
}

/// Per-connection state above the socket.
pub(crate) struct Link {
    cluster: ClusterHash,
    max_payload: u32,
    layer: Box<dyn StreamLayer>,
    decoder: FrameDecoder,
    pub queue: SendQueue,
}

impl Link {
    pub fn new(
        cluster: ClusterHash,
        max_payload: u32,
        queue_limit_bytes: usize,
        layer: Box<dyn StreamLayer>,
    ) -> Link {
        Link {
            cluster,
            max_payload,
            layer,
            decoder: FrameDecoder::new(cluster, max_payload),
            queue: SendQueue::new(queue_limit_bytes),
        }
    }

    /// Wire bytes in, validated frames out (appended to `frames`, also on error: those
    /// before the bad one were valid).
    pub fn receive(&mut self, wire: &[u8], frames: &mut Vec<Frame>) -> Result<(), ReceiveError> {
        let plain = self.layer.open(wire).map_err(ReceiveError::Layer)?;
        let result = self
            .decoder
            .feed(&plain, frames)
            .map_err(ReceiveError::Frame);
        drop(plain);
        self.flush_layer_output();
        result
    }

    /// Encodes and queues one frame; on error nothing was queued.
    pub fn enqueue(&mut self, kind: FrameKind, payload: &[u8]) -> Result<(), EnqueueError> {
        if payload.len() > self.max_payload as usize {
            return Err(EnqueueError::TooLarge {
                len: payload.len(),
                limit: self.max_payload,
            });
        }
        // Checked before encoding so a refused send costs no copy.
        self.queue
            .check_room(frame_len(payload.len()))
            .map_err(EnqueueError::Full)?;
        let frame =
            encode_frame(kind, self.cluster, payload).map_err(|_| EnqueueError::TooLarge {
                len: payload.len(),
                limit: self.max_payload,
            })?;
        let wire = self.layer.seal(frame).map_err(EnqueueError::Layer)?;
        self.queue.push(wire, 1).map_err(EnqueueError::Full)
    }

    /// Queues what the layer itself wants to send (nothing for plaintext). Layer output is
    /// not refused by the queue limit: it is small and the connection needs it to progress.
    fn flush_layer_output(&mut self) {
        while let Some(bytes) = self.layer.take_output() {
            self.queue.accounted_bytes += bytes.len();
            self.queue.chunks.push_back(Chunk { bytes, frames: 0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_refuses_past_its_limit_and_stays_unchanged() {
        let mut q = SendQueue::new(100);
        q.push(vec![0; 60], 1).unwrap();
        let err = q.push(vec![0; 50], 1).unwrap_err();
        assert_eq!(
            err,
            QueueFull {
                queued_bytes: 60,
                limit_bytes: 100
            }
        );
        assert_eq!((q.queued_bytes(), q.queued_frames()), (60, 1));
        q.push(vec![0; 40], 1).unwrap();
        assert_eq!((q.queued_bytes(), q.queued_frames()), (100, 2));
    }

    #[test]
    fn small_frames_coalesce_but_not_into_a_partly_written_chunk() {
        let mut q = SendQueue::new(1 << 20);
        q.push(vec![1; 10], 1).unwrap();
        q.push(vec![2; 10], 1).unwrap();
        assert_eq!(q.front().unwrap().len(), 20);
        q.advance(5);
        q.push(vec![3; 10], 1).unwrap();
        assert_eq!(
            q.front().unwrap().len(),
            15,
            "partly written chunk untouched"
        );
        q.advance(15);
        assert_eq!(q.front().unwrap(), &[3; 10]);
        assert_eq!((q.queued_bytes(), q.queued_frames()), (10, 1));
    }

    #[test]
    fn taken_chunks_stay_accounted_until_completed() {
        let mut q = SendQueue::new(1 << 20);
        q.push(vec![0; COALESCE_MAX_BYTES], 1).unwrap();
        let c = q.take().unwrap();
        assert_eq!(q.queued_bytes(), COALESCE_MAX_BYTES);
        q.complete(c.bytes.len(), c.frames);
        assert_eq!((q.queued_bytes(), q.queued_frames()), (0, 0));
    }
}
