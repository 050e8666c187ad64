//! Where a slice's bytes live: a small backend trait so the slice logic runs unchanged over an
//! mmap'd file (`map::MappedRegion`) or, in tests, over memory with fault injection and a
//! separate durable image (redb's crash-backend idea).
//!
//! A [`Region`] is a fixed-length byte range that can be synced (msync). A [`PageStore`]
//! creates and removes the overflow page files (`gcache.page.NNNNNN`).

use crate::map::{self, MappedRegion};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fixed-length, writable byte range with durable sync.
pub(crate) trait Region: Send {
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Makes `[offset, offset + len)` durable (msync MS_SYNC for a mapping).
    fn sync(&mut self, offset: usize, len: usize) -> io::Result<()>;
}

/// Creates and removes overflow pages, named by a file number.
pub(crate) trait PageStore: Send {
    fn create(&mut self, file_number: u64, len: u64) -> io::Result<Box<dyn Region>>;
    /// Removes a page that is no longer mapped. A page already gone is not an error.
    fn remove(&mut self, file_number: u64) -> io::Result<()>;
    /// The page's path, for messages.
    fn path_of(&self, file_number: u64) -> PathBuf;
}

/// `gcache.page.NNNNNN`, as Galera names its pages.
pub fn page_file_name(file_number: u64) -> String {
    format!("gcache.page.{file_number:06}")
}

/// Is `name` one of our (or Galera's) page files?
pub(crate) fn is_page_file_name(name: &str) -> bool {
    name.strip_prefix("gcache.page.")
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Page files in a directory, mapped.
pub(crate) struct DirPageStore {
    dir: PathBuf,
}

impl DirPageStore {
    pub(crate) fn new(dir: &Path) -> DirPageStore {
        DirPageStore {
            dir: dir.to_path_buf(),
        }
    }
}

impl PageStore for DirPageStore {
    fn create(&mut self, file_number: u64, len: u64) -> io::Result<Box<dyn Region>> {
        let path = self.path_of(file_number);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let result = (|| {
            file.set_len(len)?;
            // Best effort: a page that cannot be preallocated still works on most filesystems.
            let _ = map::preallocate(&file, len)?;
            MappedRegion::map(Arc::new(file), 0, len)
        })();
        match result {
            Ok(region) => Ok(Box::new(region)),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn remove(&mut self, file_number: u64) -> io::Result<()> {
        match fs::remove_file(self.path_of(file_number)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn path_of(&self, file_number: u64) -> PathBuf {
        self.dir.join(page_file_name(file_number))
    }
}

#[cfg(test)]
pub(crate) mod mem {
    //! In-memory regions for tests: a live image (what the page cache holds, i.e. what survives
    //! kill -9) and a durable image (what survives power loss: the live image as of the last
    //! successful sync), plus injectable sync and create failures.

    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    pub(crate) struct Faults {
        pub(crate) fail_sync: AtomicBool,
        pub(crate) fail_create: AtomicBool,
    }

    pub(crate) struct MemRegion {
        pub(crate) live: Vec<u8>,
        pub(crate) durable: Arc<Mutex<Vec<u8>>>,
        faults: Arc<Faults>,
    }

    impl MemRegion {
        pub(crate) fn new(len: usize, faults: Arc<Faults>) -> MemRegion {
            MemRegion {
                live: vec![0; len],
                durable: Arc::new(Mutex::new(vec![0; len])),
                faults,
            }
        }
    }

    impl Region for MemRegion {
        fn bytes(&self) -> &[u8] {
            &self.live
        }
        fn bytes_mut(&mut self) -> &mut [u8] {
            &mut self.live
        }
        fn sync(&mut self, offset: usize, len: usize) -> io::Result<()> {
            if self.faults.fail_sync.load(Ordering::SeqCst) {
                return Err(io::Error::other("injected msync failure"));
            }
            let end = (offset + len).min(self.live.len());
            self.durable.lock().unwrap()[offset..end].copy_from_slice(&self.live[offset..end]);
            Ok(())
        }
    }

    pub(crate) struct MemPageStore {
        pub(crate) live_pages: Arc<Mutex<BTreeSet<u64>>>,
        faults: Arc<Faults>,
    }

    impl MemPageStore {
        pub(crate) fn new(faults: Arc<Faults>) -> MemPageStore {
            MemPageStore {
                live_pages: Arc::default(),
                faults,
            }
        }
    }

    impl PageStore for MemPageStore {
        fn create(&mut self, file_number: u64, len: u64) -> io::Result<Box<dyn Region>> {
            if self.faults.fail_create.load(Ordering::SeqCst) {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected ENOSPC",
                ));
            }
            assert!(
                self.live_pages.lock().unwrap().insert(file_number),
                "page {file_number} reused"
            );
            Ok(Box::new(MemRegion::new(len as usize, self.faults.clone())))
        }
        fn remove(&mut self, file_number: u64) -> io::Result<()> {
            self.live_pages.lock().unwrap().remove(&file_number);
            Ok(())
        }
        fn path_of(&self, file_number: u64) -> PathBuf {
            PathBuf::from(page_file_name(file_number))
        }
    }
}
