//! `gvwstate.dat`: the last primary component this node was in, for `pc.recovery`.
//!
//! Galera keeps the same file so that, when every node of a cluster crashed, the nodes can
//! re-form the last primary component by themselves once they all come back. Trireme writes it
//! on every primary view (the members' names and replication addresses), deletes it on a
//! clean leave (a node that left on purpose must not pull a cluster back), and reads it when a
//! node starts joining. The name is Galera's, so MariaDB's mariabackup SST keeps it.
//!
//! The content is Trireme's own text format; a Galera-written file has no `history:` line and
//! is ignored (with a log line), so moving from Galera never resurrects a Galera view.

use std::path::{Path, PathBuf};
use trireme_types::HistoryId;

pub const FILE_NAME: &str = "gvwstate.dat";

/// One member of the saved primary component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMember {
    pub name: String,
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedView {
    pub history: HistoryId,
    pub view_id: i64,
    /// Every member, this node included.
    pub members: Vec<SavedMember>,
}

impl SavedView {
    pub fn render(&self, my_name: &str) -> String {
        let mut text = format!(
            "# Trireme saved primary component (pc.recovery)\nmy_name: {my_name}\nhistory: {}\nview_id: {}\n",
            self.history, self.view_id
        );
        for m in &self.members {
            text.push_str(&format!("member: {} {}\n", m.address, m.name));
        }
        text
    }

    pub fn parse(text: &str) -> Result<SavedView, String> {
        let mut history = None;
        let mut view_id = 0;
        let mut members = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "history" => history = Some(value.parse::<HistoryId>().map_err(|e| e.to_string())?),
                "view_id" => {
                    view_id = value
                        .parse()
                        .map_err(|_| format!("bad view_id '{value}'"))?
                }
                "member" => {
                    let (address, name) = value.split_once(' ').unwrap_or((value, ""));
                    members.push(SavedMember {
                        name: name.trim().to_string(),
                        address: address.to_string(),
                    });
                }
                _ => {}
            }
        }
        let history = history.ok_or("no history line (not written by Trireme)")?;
        if members.is_empty() {
            return Err("no members".into());
        }
        Ok(SavedView {
            history,
            view_id,
            members,
        })
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

pub fn load(dir: &Path) -> Option<SavedView> {
    let text = std::fs::read_to_string(path(dir)).ok()?;
    match SavedView::parse(&text) {
        Ok(view) => Some(view),
        Err(e) => {
            log::info!("Ignoring {}: {e}", path(dir).display());
            None
        }
    }
}

pub fn store(dir: &Path, view: &SavedView, my_name: &str) {
    let target = path(dir);
    let tmp = target.with_extension("dat.tmp");
    let result =
        std::fs::write(&tmp, view.render(my_name)).and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = result {
        log::warn!("cannot write {}: {e}", target.display());
    }
}

pub fn remove(dir: &Path) {
    let _ = std::fs::remove_file(path(dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_view_round_trips_and_a_galera_file_is_refused() {
        let view = SavedView {
            history: "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b".parse().unwrap(),
            view_id: 7,
            members: vec![
                SavedMember {
                    name: "node0".into(),
                    address: "10.0.0.1:4567".into(),
                },
                SavedMember {
                    name: "node 1".into(),
                    address: "[::1]:4567".into(),
                },
            ],
        };
        assert_eq!(SavedView::parse(&view.render("node0")).unwrap(), view);
        let galera = "my_uuid: c3b11937-e77a-11f1-baac-9f802ed6fc73\n#vwbeg\nview_id: 3 c3b11937-e77a-11f1-baac-9f802ed6fc73 1\nbootstrap: 0\nmember: c3b11937-e77a-11f1-baac-9f802ed6fc73 0\n#vwend\n";
        assert!(SavedView::parse(galera).is_err());
    }
}
