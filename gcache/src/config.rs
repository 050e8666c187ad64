//! What `GCache::open` needs to know, in Galera's vocabulary (`gcache.dir`, `gcache.name`,
//! `gcache.size`, `gcache.page_size`, `gcache.recover`) plus the shard count.

use crate::error::GCacheError;
use crate::format::{Geometry, MAX_SLICES};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GCacheConfig {
    /// `gcache.dir`: where the cache file (unless `name` is absolute) and page files live.
    /// Galera's default is the datadir.
    pub dir: PathBuf,
    /// `gcache.name`: the cache file's name, `galera.cache` by default (a name mariabackup SST
    /// keeps). An absolute path is used as is.
    pub name: String,
    /// `gcache.size`: the cache file's size, all slices together. Rounded down so each slice is
    /// a whole number of 4 KiB pages.
    pub size_bytes: u64,
    /// `gcache.page_size`: size of an overflow page file (a larger record gets a page of its own).
    pub page_size_bytes: u64,
    /// `gcache.recover`: rebuild the index from the file at open instead of starting empty.
    pub recover: bool,
    /// One slice per shard thread (`trireme.shards`). Changing it reinitialises the file.
    pub slice_count: u32,
}

impl GCacheConfig {
    pub const DEFAULT_NAME: &'static str = "galera.cache";
    /// Galera's default `gcache.size` (128M).
    pub const DEFAULT_SIZE_BYTES: u64 = 128 << 20;
    /// Galera's default `gcache.page_size` (128M).
    pub const DEFAULT_PAGE_SIZE_BYTES: u64 = 128 << 20;

    /// Galera's defaults in `dir`, one slice, no recovery.
    pub fn new(dir: impl Into<PathBuf>) -> GCacheConfig {
        GCacheConfig {
            dir: dir.into(),
            name: Self::DEFAULT_NAME.to_string(),
            size_bytes: Self::DEFAULT_SIZE_BYTES,
            page_size_bytes: Self::DEFAULT_PAGE_SIZE_BYTES,
            recover: false,
            slice_count: 1,
        }
    }

    /// The cache file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// The file geometry these settings give, or an error naming the option at fault.
    pub fn geometry(&self) -> Result<Geometry, GCacheError> {
        if self.slice_count == 0 || self.slice_count > MAX_SLICES {
            return Err(GCacheError::InvalidConfig {
                option: "trireme.shards (gcache slice count)",
                value: self.slice_count.to_string(),
                reason: format!("must be between 1 and {MAX_SLICES}"),
            });
        }
        if self.name.is_empty() {
            return Err(GCacheError::InvalidConfig {
                option: "gcache.name",
                value: String::new(),
                reason: "must name a file".to_string(),
            });
        }
        Geometry::for_size(self.size_bytes, self.slice_count).ok_or_else(|| {
            GCacheError::InvalidConfig {
                option: "gcache.size",
                value: self.size_bytes.to_string(),
                reason: format!(
                    "too small for {} slice(s): at least {} bytes needed",
                    self.slice_count,
                    Geometry::min_size_bytes(self.slice_count)
                ),
            }
        })
    }
}
