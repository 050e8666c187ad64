//! The GCache record of a primary configuration change: the whole view, so that a joiner
//! receiving it by IST hands MariaDB the same `view_cb` the others had at that seqno (MariaDB
//! stores it in `mysql.wsrep_cluster*` and reports `wsrep_cluster_conf_id` from it).
//!
//! Layout, little-endian: `TVW1`, history (16 bytes), seqno (i64), view id (i64), member
//! count (u32), then per member: id (16 bytes), name and incoming address (each a u16 length
//! and UTF-8 bytes). Records come from a donor over the network: decoding checks every
//! length and refuses what does not fit.

use trireme_types::{HistoryId, Member, NodeId, Seqno, Uuid, View, ViewId, ViewStatus};

const MAGIC: &[u8; 4] = b"TVW1";
/// More members than any cluster has; bounds what a bad record can make us allocate.
const MAX_MEMBERS: u32 = 1024;

pub(super) fn encode(view: &View) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + view.members.len() * 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(view.history.as_bytes());
    out.extend_from_slice(&view.seqno.0.to_le_bytes());
    out.extend_from_slice(&view.view_id.0.to_le_bytes());
    out.extend_from_slice(&(view.members.len() as u32).to_le_bytes());
    for m in &view.members {
        out.extend_from_slice(m.id.as_bytes());
        put_str(&mut out, &m.name);
        put_str(&mut out, &m.incoming);
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The primary view in `bytes` (`my_index` unset, as Galera passes views replayed by IST);
/// `None` for anything else, including the older text records.
pub(super) fn decode(bytes: &[u8]) -> Option<View> {
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC {
        return None;
    }
    let history = HistoryId(Uuid(r.array()?));
    let seqno = Seqno(i64::from_le_bytes(r.array()?));
    let view_id = ViewId(i64::from_le_bytes(r.array()?));
    let count = u32::from_le_bytes(r.array()?);
    if count > MAX_MEMBERS {
        return None;
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = NodeId(Uuid(r.array()?));
        let name = r.string()?;
        let incoming = r.string()?;
        members.push(Member { id, name, incoming });
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(View {
        history,
        seqno,
        view_id,
        status: ViewStatus::Primary,
        members,
        my_index: None,
        proto_ver: 4,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View {
            history: HistoryId::generate(),
            seqno: Seqno(42),
            view_id: ViewId(7),
            status: ViewStatus::Primary,
            members: vec![
                Member {
                    id: NodeId::generate(),
                    name: "node0".into(),
                    incoming: "10.0.0.1:3306".into(),
                },
                Member {
                    id: NodeId::generate(),
                    name: "nöde1".into(),
                    incoming: String::new(),
                },
            ],
            my_index: Some(1),
            proto_ver: 4,
        }
    }

    #[test]
    fn a_view_survives_the_record_without_its_local_index() {
        let v = view();
        let back = decode(&encode(&v)).expect("decodes");
        assert_eq!(back.my_index, None);
        assert_eq!(
            View {
                my_index: Some(1),
                ..back
            },
            v
        );
    }

    #[test]
    fn truncated_extended_or_old_records_are_refused() {
        let bytes = encode(&view());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "prefix of {cut} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        assert!(decode(b"view 3 members 2").is_none());
        let mut huge = bytes[..40].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_none());
    }
}
