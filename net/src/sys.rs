//! The operating-system edge of the portable path and of socket setup: eventfds, poll(2),
//! socket creation and non-blocking connect, and socket addresses in the kernel's layout.
//!
//! Owns every `unsafe` of the crate outside the io_uring module; each block says why it is
//! sound. Everything else (bind, listen, accept, read, write, shutdown, socket options) goes
//! through std, which already sets SO_REUSEADDR on listeners and CLOEXEC everywhere.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking eventfd that wakes [`crate::Transport::poll`] from another thread.
/// The runtime has its own (`runtime::sys::EventFd`); this one serves tests, benches and any
/// owner without one. `poll` accepts any non-blocking eventfd.
#[derive(Debug)]
pub struct WakeFd {
    fd: OwnedFd,
}

impl WakeFd {
    pub fn new() -> io::Result<WakeFd> {
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(WakeFd { fd })
    }

    /// Wakes the transport polling on this fd (callable from any thread).
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd. EAGAIN (counter
        // saturated) means a wake-up is already pending, which is all we want.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

impl AsRawFd for WakeFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Consumes pending signals of a non-blocking eventfd; true if there were any.
pub(crate) fn drain_eventfd(fd: RawFd) -> bool {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64. The fd belongs to the caller of
    // `poll`, who keeps it open for the call; it must be non-blocking (documented on `poll`).
    let n = unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
    n == 8
}

/// poll(2) over `fds`; EINTR counts as "nothing ready".
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs for
    // the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(n as usize)
}

/// A new TCP socket for `addr`'s family, CLOEXEC, TCP_NODELAY, blocking or not.
pub(crate) fn tcp_socket(addr: &SocketAddr, nonblocking: bool) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let mut ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: socket takes no pointers; the result is checked before use.
    let fd = unsafe { libc::socket(family, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Starts connecting a non-blocking socket. Ok(true): connected at once (loopback can);
/// Ok(false): in progress, poll for writability then read SO_ERROR.
pub(crate) fn start_connect(sock: &TcpStream, addr: &SocketAddr) -> io::Result<bool> {
    let raw = SockAddr::from(*addr);
    // SAFETY: `raw` lives on this stack frame for the whole call and `raw.len()` is the size
    // of the structure `raw.as_ptr()` points to.
    let rc = unsafe { libc::connect(sock.as_raw_fd(), raw.as_ptr(), raw.len()) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINPROGRESS) => Ok(false),
        _ => Err(err),
    }
}

/// A socket address in the kernel's layout, built without unsafe.
#[derive(Clone, Copy)]
pub(crate) enum SockAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> SockAddr {
        match addr {
            SocketAddr::V4(a) => SockAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => SockAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }
}

impl SockAddr {
    pub fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            SockAddr::V4(a) => (a as *const libc::sockaddr_in).cast(),
            SockAddr::V6(a) => (a as *const libc::sockaddr_in6).cast(),
        }
    }
    pub fn len(&self) -> libc::socklen_t {
        match self {
            SockAddr::V4(_) => std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            SockAddr::V6(_) => std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        }
    }
}
