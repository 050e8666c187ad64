//! `grastate.dat`: the node's saved position, in Galera's exact format so that a node moves
//! between Galera 4 and Trireme by a restart (contract §6.5).
//!
//! ```text
//! # GALERA saved state
//! version: 2.1
//! uuid:    <history uuid>
//! seqno:   <n>
//! safe_to_bootstrap: <0|1>
//! ```
//! While the provider runs, seqno is -1 ("unsafe": the database may be ahead of the file);
//! the real seqno is written on clean shutdown. The file is replaced atomically (write a
//! temporary, fsync, rename) so a crash never leaves half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use trireme_types::{Gtid, HistoryId, Seqno};

pub const FILE_NAME: &str = "grastate.dat";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedState {
    pub position: Gtid,
    pub safe_to_bootstrap: bool,
}

impl SavedState {
    /// What a node with no history has: nothing, and nothing to protect.
    pub const EMPTY: SavedState = SavedState {
        position: Gtid::UNDEFINED,
        safe_to_bootstrap: true,
    };

    pub fn render(&self) -> String {
        format!(
            "# GALERA saved state\nversion: 2.1\nuuid:    {}\nseqno:   {}\nsafe_to_bootstrap: {}\n",
            self.position.history,
            self.position.seqno,
            u8::from(self.safe_to_bootstrap)
        )
    }

    /// Parses the file text. Unknown lines are ignored (later Galera versions add fields);
    /// a file without a parseable uuid is an error naming the line.
    pub fn parse(text: &str) -> Result<SavedState, String> {
        let mut history = None;
        let mut seqno = Seqno::UNDEFINED;
        let mut safe = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "uuid" => {
                    history = Some(
                        value
                            .parse::<HistoryId>()
                            .map_err(|e| format!("bad uuid line '{line}': {e}"))?,
                    )
                }
                "seqno" => {
                    seqno = Seqno(
                        value
                            .parse::<i64>()
                            .map_err(|_| format!("bad seqno line '{line}'"))?,
                    )
                }
                "safe_to_bootstrap" => safe = value == "1",
                _ => {}
            }
        }
        let history = history.ok_or_else(|| "no uuid line".to_string())?;
        Ok(SavedState {
            position: Gtid::new(history, seqno),
            safe_to_bootstrap: safe,
        })
    }
}

/// The state file of one data directory.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn in_dir(dir: &Path) -> StateFile {
        StateFile {
            path: dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the saved state; a missing file is `None` (a new node).
    pub fn load(&self) -> Result<Option<SavedState>, String> {
        match fs::read_to_string(&self.path) {
            Ok(text) => SavedState::parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Replaces the file atomically.
    pub fn store(&self, state: &SavedState) -> Result<(), String> {
        let tmp = self.path.with_extension("dat.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(state.render().as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                if let Ok(d) = fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        };
        write().map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GALERA_WRITTEN: &str = include_str!("../../reference/galera-4.23-grastate.dat");

    #[test]
    fn reads_the_file_galera_4_wrote() {
        let state = SavedState::parse(GALERA_WRITTEN).unwrap();
        assert_eq!(
            state.position.to_string(),
            "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b:4"
        );
        assert!(state.safe_to_bootstrap);
    }

    #[test]
    fn writes_byte_for_byte_what_galera_writes() {
        let state = SavedState::parse(GALERA_WRITTEN).unwrap();
        assert_eq!(state.render(), GALERA_WRITTEN.trim_end_matches(' '));
    }

    #[test]
    fn parse_refuses_a_file_without_uuid_and_names_bad_lines() {
        assert!(SavedState::parse("# GALERA saved state\nseqno: 3\n").is_err());
        let err = SavedState::parse("uuid: nonsense\n").unwrap_err();
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn store_then_load_round_trips_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("trireme-grastate-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = StateFile::in_dir(&dir);
        assert_eq!(file.load().unwrap(), None);
        let state = SavedState {
            position: "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b:-1".parse().unwrap(),
            safe_to_bootstrap: false,
        };
        file.store(&state).unwrap();
        assert_eq!(file.load().unwrap(), Some(state));
        assert!(!dir.join("grastate.dat.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
