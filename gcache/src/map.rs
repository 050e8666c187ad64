//! The crate's only `unsafe`: mapping files, preallocating their blocks, and the advisory lock.
//!
//! Ownership argument for every mapping made here (the `// SAFETY:` blocks refer to it):
//! - The main cache file is opened by `GCache::open`, which takes an exclusive `flock` on it
//!   before mapping, sizes it (`set_len`, `posix_fallocate`) *before* any mapping exists, and
//!   never changes its length again while a mapping lives. Each mapping keeps an `Arc<File>` to
//!   the open file, so the lock and the inode outlive every mapping.
//! - Page files are created by their slice (`O_TRUNC`, sized, then mapped) and only unlinked
//!   after their mapping is dropped. Unlinking by someone else (mariabackup wiping the datadir)
//!   does not invalidate a mapping.
//! - Mappings are disjoint per slice and each is owned by exactly one `GCacheSlice`; the slice is
//!   `!Sync`, so the `&mut [u8]` it derives is never aliased inside this process.
//! - What we cannot rule out: another process ignoring the `flock` and truncating or writing the
//!   file. Truncation would raise SIGBUS, writing would show up as checksum failures. MariaDB's
//!   SST scripts keep `galera.cache` and never truncate it (contract §6.4), as Galera relies on.
#![allow(unsafe_code)]

use crate::region::Region;
use memmap2::{MmapMut, MmapOptions};
use std::fs::File;
use std::io;
use std::sync::Arc;

/// A shared, writable mapping of `[offset, offset + len)` of a file.
pub(crate) struct MappedRegion {
    map: MmapMut,
    // Keeps the file (and its flock) open for as long as the mapping exists.
    _file: Arc<File>,
}

impl MappedRegion {
    pub(crate) fn map(file: Arc<File>, offset: u64, len: u64) -> io::Result<MappedRegion> {
        let file_len = file.metadata()?.len();
        let end = offset.checked_add(len);
        if len == 0 || end.is_none_or(|end| end > file_len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mapping {len} bytes at {offset} of a {file_len}-byte file"),
            ));
        }
        let len_usize = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mapping too large"))?;
        // SAFETY: the range lies inside the file (checked just above), and per the module
        // header the file is not truncated while this mapping lives: its length is fixed before
        // mapping, the Arc<File> held here keeps it open and locked, and this process maps each
        // range once, owned by one slice.
        let map = unsafe {
            MmapOptions::new()
                .offset(offset)
                .len(len_usize)
                .map_mut(&*file)?
        };
        Ok(MappedRegion { map, _file: file })
    }
}

impl Region for MappedRegion {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    fn sync(&mut self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }
}

/// Whether the filesystem allocated the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Preallocated {
    Allocated,
    Unsupported,
}

/// Allocates blocks for `[0, len)` so stores to a mapping never need a new block (a failed
/// allocation on a mapping is SIGBUS, not an error we can return).
pub(crate) fn preallocate(file: &File, len: u64) -> io::Result<Preallocated> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        // SAFETY: plain syscall on a descriptor borrowed from a live `File`; no memory is passed.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        match rc {
            0 => Ok(Preallocated::Allocated),
            libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL => Ok(Preallocated::Unsupported),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, len);
        Ok(Preallocated::Unsupported)
    }
}

/// Takes an exclusive, non-blocking `flock`. `Ok(false)`: another open file description holds
/// it (another process, or a second open in this one).
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a descriptor borrowed from a live `File`; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}
