//! Helpers shared by the integration tests: scratch directories, a seeded PRNG, payloads.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use trireme_gcache::GCacheConfig;
use trireme_types::{HistoryId, Uuid};

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("trireme-gcache-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Names of `gcache.page.*` files present.
    pub fn page_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("gcache.page."))
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn history(b: u8) -> HistoryId {
    HistoryId(Uuid([b; 16]))
}

/// A small cache: `ring_bytes` of ring per slice.
pub fn config(dir: &Path, slices: u32, ring_bytes: u64) -> GCacheConfig {
    GCacheConfig {
        dir: dir.to_path_buf(),
        name: "galera.cache".to_string(),
        size_bytes: 4096 + u64::from(slices) * (4096 + ring_bytes),
        page_size_bytes: 16 * 1024,
        recover: true,
        slice_count: slices,
    }
}

/// Deterministic payload for a seqno (so any read can be checked without a model).
pub fn payload(seqno: i64, len: usize) -> Vec<u8> {
    let mut x = (seqno as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// The seed from `TRIREME_SEED`, or a fresh one; printed either way so a failure replays.
pub fn seed() -> u64 {
    let seed = match std::env::var("TRIREME_SEED") {
        Ok(s) => s.trim().parse().expect("TRIREME_SEED must be a u64"),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ u64::from(std::process::id()).rotate_left(32)
        }
    };
    eprintln!("seed: TRIREME_SEED={seed} (set it to replay)");
    seed
}
