//! The byte-stream layer between a socket and the frame codec.
//!
//! Owns: the [`StreamLayer`] trait and its only implementation today, [`Plaintext`].
//!
//! Why it exists: Galera's `socket.ssl_*` options put TLS between the socket and the frames.
//! rustls is sans-IO (ciphertext in, plaintext out and the reverse), and so is this trait, so
//! both transports (which own the sockets and the buffers the kernel writes into) stay as they
//! are when TLS arrives: a `TlsLayer` wrapping `rustls::Connection` implements the trait and a
//! connection is built with it instead of [`Plaintext`].
//!
//! Invariants: `open` is given every byte received on the connection, in order, exactly once;
//! `seal` is given every frame to send, in order; bytes returned by `seal` and by
//! `take_output` are sent in the order they were returned. Plaintext costs no copy.

use std::borrow::Cow;

/// An error of the stream layer (a TLS alert, a handshake failure...). Ends the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stream layer: {0}")]
pub struct LayerError(pub String);

/// What sits between the socket's bytes and the frame codec.
pub trait StreamLayer {
    /// Bytes received from the socket -> the plaintext they carry (possibly none yet, e.g.
    /// during a TLS handshake or with a partial TLS record).
    fn open<'a>(&mut self, wire: &'a [u8]) -> Result<Cow<'a, [u8]>, LayerError>;
    /// One or more encoded frames -> the bytes to put on the socket.
    fn seal(&mut self, plain: Vec<u8>) -> Result<Vec<u8>, LayerError>;
    /// Bytes the layer itself must send (TLS handshake, alerts, close_notify): asked after
    /// every `open` and when the connection is established.
    fn take_output(&mut self) -> Option<Vec<u8>>;
    /// Whether frames may be sent yet (false during a TLS handshake: `seal` output would be
    /// held back by the layer, not lost).
    fn ready(&self) -> bool;
}

/// No TLS: bytes pass through untouched and uncopied.
#[derive(Debug, Default)]
pub struct Plaintext;

impl StreamLayer for Plaintext {
    fn open<'a>(&mut self, wire: &'a [u8]) -> Result<Cow<'a, [u8]>, LayerError> {
        Ok(Cow::Borrowed(wire))
    }
    fn seal(&mut self, plain: Vec<u8>) -> Result<Vec<u8>, LayerError> {
        Ok(plain)
    }
    fn take_output(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn ready(&self) -> bool {
        true
    }
}
