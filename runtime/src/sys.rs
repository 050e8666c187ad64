//! The operating-system edge of the runtime: locked-memory limits, io_uring availability and
//! the eventfd that wakes a parked shard. All `unsafe` of the runtime lives here, each block
//! with its argument.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What the process may lock (io_uring rings and registered buffers are charged to it, per
/// OS user, unless the process holds CAP_IPC_LOCK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memlock {
    pub soft_bytes: u64,
    pub hard_bytes: u64,
    /// With CAP_IPC_LOCK the kernel skips the accounting entirely.
    pub cap_ipc_lock: bool,
}

impl Memlock {
    /// Bytes we may count on for rings (None: unlimited).
    pub fn budget_bytes(&self) -> Option<u64> {
        if self.cap_ipc_lock || self.soft_bytes == u64::MAX {
            None
        } else {
            Some(self.soft_bytes)
        }
    }
}

fn rlim_to_u64(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        value
    }
}

/// Raises the soft RLIMIT_MEMLOCK to the hard one (going higher needs CAP_SYS_RESOURCE)
/// and reports what we have. Never fails: on error it reports what it could read.
pub fn raise_memlock() -> Memlock {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    if got && limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit read above; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
            limit = raised;
        } else {
            log::debug!(
                "could not raise RLIMIT_MEMLOCK: {}",
                io::Error::last_os_error()
            );
        }
    }
    Memlock {
        soft_bytes: if got { rlim_to_u64(limit.rlim_cur) } else { 0 },
        hard_bytes: if got { rlim_to_u64(limit.rlim_max) } else { 0 },
        cap_ipc_lock: has_cap_ipc_lock(),
    }
}

/// Reads the effective capability set from /proc (no capget(2) needed).
fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Whether this process can create an io_uring with the flags the shard loop needs
/// (SINGLE_ISSUER + DEFER_TASKRUN). Returns the reason when it cannot: the kernel refused
/// (old kernel, seccomp, io_uring_disabled), or locked memory ran short.
pub fn probe_io_uring() -> Result<(), String> {
    let ring = io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .build(8);
    match ring {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::ENOMEM) => format!("{e} (locked memory exhausted: raise LimitMEMLOCK)"),
            Some(libc::EPERM) => format!("{e} (io_uring disabled by policy)"),
            Some(libc::ENOSYS) => format!("{e} (kernel without io_uring)"),
            Some(libc::EINVAL) => format!("{e} (kernel too old for SINGLE_ISSUER/DEFER_TASKRUN)"),
            _ => e.to_string(),
        }),
    }
}

static TERMINATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_terminate(_signal: libc::c_int) {
    // Async-signal-safe: one atomic store.
    TERMINATE.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// For standalone binaries (the arbitrator): SIGTERM and SIGINT set the returned flag.
pub fn termination_flag() -> &'static std::sync::atomic::AtomicBool {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installs a handler that only stores to an atomic (async-signal-safe); the
        // function pointer is a valid `extern "C" fn(c_int)` for the whole program.
        unsafe {
            libc::signal(
                signal,
                on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    &TERMINATE
}

/// Asks the scheduler for a short time slice for the calling thread: EEVDF (Linux 6.12+)
/// gives a SCHED_OTHER thread with a shorter slice an earlier virtual deadline, so once it is
/// runnable it is picked (and may preempt) sooner, without more CPU share and without any
/// privilege. Shard 0 is the one thread every commit passes through; on a small VM crowded
/// with mariadbd's threads, time it spends runnable but not running delays every commit.
/// Older kernels accept the call and ignore the slice; an error is returned as is.
pub fn request_short_slice(slice: std::time::Duration) -> io::Result<()> {
    // SAFETY: getpriority has no pointer arguments; -1 with errno set is an error, checked.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    // SAFETY: reads this thread's errno.
    if nice == -1 && unsafe { *libc::__errno_location() } != 0 {
        return Err(io::Error::last_os_error());
    }
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        // Keep the thread's nice value (sched_setattr sets it from here).
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: slice.as_nanos().min(u128::from(u64::MAX)) as u64,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: `attr` is a valid sched_attr whose `size` field says how much the kernel may
    // read; pid 0 is the calling thread; flags 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking eventfd: other threads `signal()` it to wake a shard parked in poll(2) or
/// in its ring.
///
/// The owner says when it is about to sleep (`set_sleeping`); `signal_if_sleeping` writes
/// only then. A busy or spinning shard finds new commands on its own, so under load a client
/// pays no `write(2)` and the shard no `read(2)` per command.
pub struct EventFd {
    fd: OwnedFd,
    sleeping: std::sync::atomic::AtomicBool,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd has no pointer arguments; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we exclusively own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd {
            fd,
            sleeping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. EAGAIN (counter
        // saturated) only means a wake-up is already pending, which is what we want.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// The owner is about to sleep (`true`: it must re-check its inbox after this, then
    /// wait on the fd) or is awake again (`false`).
    pub fn set_sleeping(&self, sleeping: bool) {
        use std::sync::atomic::{fence, Ordering};
        self.sleeping.store(sleeping, Ordering::SeqCst);
        // Pairs with the fence in `signal_if_sleeping`: either the owner's re-check sees the
        // new command, or the sender sees `sleeping` and writes.
        fence(Ordering::SeqCst);
    }

    /// Signals only if the owner sleeps (call after queueing the command it must see).
    pub fn signal_if_sleeping(&self) {
        use std::sync::atomic::{fence, Ordering};
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.signal();
        }
    }

    /// Consumes pending signals; true if there were any.
    pub fn drain(&self) -> bool {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into a valid u64; the fd is non-blocking.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        n == 8
    }

    /// Blocks until the eventfd or one of `fds` is readable, or `timeout_ms` passes
    /// (-1: forever). Returns which of `fds` are readable (the eventfd is drained).
    pub fn wait(&self, fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<usize>> {
        let mut polls: Vec<libc::pollfd> = std::iter::once(self.fd.as_raw_fd())
            .chain(fds.iter().copied())
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs for the call.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(Vec::new());
            }
            return Err(err);
        }
        if polls[0].revents != 0 {
            self.drain();
        }
        Ok(polls[1..]
            .iter()
            .enumerate()
            .filter(|(_, p)| p.revents != 0)
            .map(|(i, _)| i)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_soft_limit_is_raised_to_the_hard_one() {
        let m = raise_memlock();
        assert_eq!(m.soft_bytes, m.hard_bytes, "{m:?}");
    }

    #[test]
    fn eventfd_wakes_a_waiter_and_times_out_without_a_signal() {
        let efd = EventFd::new().unwrap();
        let start = std::time::Instant::now();
        assert!(efd.wait(&[], 20).unwrap().is_empty());
        assert!(start.elapsed() >= std::time::Duration::from_millis(15));
        efd.signal();
        efd.signal();
        assert!(efd.wait(&[], 5_000).unwrap().is_empty());
        assert!(!efd.drain(), "wait drained both signals");
    }
}
