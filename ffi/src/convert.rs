//! Values across the boundary: C strings, UUIDs, GTIDs, trx meta and view structs.
//!
//! Everything coming from C is copied into Rust-owned values; everything going to C either
//! lives in caller-provided memory (out-parameters) or in a buffer we own for the duration
//! of one callback (views).

use crate::abi::*;
use std::ffi::{c_char, CStr};
use trireme_replicator::TrxMeta;
#[cfg(test)]
use trireme_types::Member;
use trireme_types::{Gtid, HistoryId, NodeId, Seqno, Uuid, View, ViewStatus};

/// Copies a C string; NULL becomes "".
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub unsafe fn string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated per the function contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// A byte view of a `wsrep_buf_t`; NULL or zero length becomes empty.
///
/// # Safety
/// `buf` is NULL or points to a `wsrep_buf_t` whose `ptr` is valid for `len` bytes for the
/// lifetime `'a` chosen by the caller (the duration of the C call).
pub unsafe fn bytes<'a>(buf: *const wsrep_buf_t) -> &'a [u8] {
    if buf.is_null() {
        return &[];
    }
    // SAFETY: non-null, points to a valid wsrep_buf_t per the contract.
    let buf = unsafe { &*buf };
    if buf.ptr.is_null() || buf.len == 0 {
        return &[];
    }
    // SAFETY: the server guarantees `ptr` is valid for `len` bytes during the call.
    unsafe { std::slice::from_raw_parts(buf.ptr.cast::<u8>(), buf.len) }
}

pub fn uuid_to_c(uuid: Uuid) -> wsrep_uuid_t {
    wsrep_uuid_t { data: uuid.0 }
}

pub fn gtid_to_c(gtid: Gtid) -> wsrep_gtid_t {
    wsrep_gtid_t {
        uuid: uuid_to_c(gtid.history.0),
        seqno: gtid.seqno.0,
    }
}

pub fn gtid_from_c(gtid: &wsrep_gtid_t) -> Gtid {
    Gtid::new(HistoryId(Uuid(gtid.uuid.data)), Seqno(gtid.seqno))
}

pub fn meta_to_c(meta: &TrxMeta) -> wsrep_trx_meta_t {
    wsrep_trx_meta_t {
        gtid: gtid_to_c(meta.gtid),
        stid: wsrep_stid_t {
            node: uuid_to_c(meta.source.0),
            trx: meta.trx_id,
            conn: meta.conn_id,
        },
        depends_on: meta.depends_on.0,
    }
}

pub fn meta_from_c(meta: &wsrep_trx_meta_t) -> TrxMeta {
    TrxMeta {
        gtid: gtid_from_c(&meta.gtid),
        source: NodeId(Uuid(meta.stid.node.data)),
        trx_id: meta.stid.trx,
        conn_id: meta.stid.conn,
        depends_on: Seqno(meta.depends_on),
    }
}

fn fill_c_text<const N: usize>(target: &mut [c_char; N], text: &str) {
    // Leave room for the terminating NUL; truncate longer text (the server shows at most
    // N-1 bytes anyway).
    for (slot, byte) in target.iter_mut().zip(text.bytes().take(N - 1)) {
        *slot = byte as c_char;
    }
}

/// A `wsrep_view_info_t` with its members, in a buffer we own (8-byte aligned u64 words).
pub struct ViewBuffer {
    words: Vec<u64>,
}

impl ViewBuffer {
    pub fn new(view: &View, capabilities: wsrep_cap_t) -> ViewBuffer {
        let header = std::mem::size_of::<wsrep_view_info_t>();
        let member = std::mem::size_of::<wsrep_member_info_t>();
        let bytes = header + member * view.members.len().max(1);
        let mut words = vec![0u64; bytes.div_ceil(8)];
        let base = words.as_mut_ptr().cast::<u8>();
        let info = wsrep_view_info_t {
            state_id: gtid_to_c(Gtid::new(view.history, view.seqno)),
            view: view.view_id.0,
            status: match view.status {
                ViewStatus::Primary => WSREP_VIEW_PRIMARY,
                ViewStatus::NonPrimary => WSREP_VIEW_NON_PRIMARY,
                ViewStatus::Disconnected => WSREP_VIEW_DISCONNECTED,
            },
            capabilities,
            my_idx: view.my_index.map(|i| i as i32).unwrap_or(-1),
            memb_num: view.members.len() as i32,
            proto_ver: view.proto_ver,
            members: [],
        };
        // SAFETY: `words` holds at least `header` bytes, is 8-byte aligned (u64), and
        // wsrep_view_info_t has alignment 8; we write one value at its start.
        unsafe { std::ptr::write(base.cast::<wsrep_view_info_t>(), info) };
        for (i, m) in view.members.iter().enumerate() {
            let mut info = wsrep_member_info_t {
                id: uuid_to_c(m.id.0),
                name: [0; WSREP_MEMBER_NAME_LEN],
                incoming: [0; WSREP_INCOMING_LEN],
            };
            fill_c_text(&mut info.name, &m.name);
            fill_c_text(&mut info.incoming, &m.incoming);
            // SAFETY: member i lies at header + i*member, inside the allocation sized for
            // all members; the offset is a multiple of 8 (56 and 304 are), matching the
            // struct's alignment.
            unsafe {
                std::ptr::write(
                    base.add(header + i * member).cast::<wsrep_member_info_t>(),
                    info,
                )
            };
        }
        ViewBuffer { words }
    }

    pub fn as_ptr(&self) -> *const wsrep_view_info_t {
        self.words.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trireme_types::ViewId;

    fn member(id: NodeId, name: &str, incoming: &str) -> Member {
        Member {
            id,
            name: name.to_string(),
            incoming: incoming.to_string(),
        }
    }

    #[test]
    fn view_buffer_lays_out_members_where_the_server_reads_them() {
        let view = View {
            history: HistoryId(Uuid([1; 16])),
            seqno: Seqno(7),
            view_id: ViewId(3),
            status: ViewStatus::Primary,
            members: vec![
                member(NodeId(Uuid([2; 16])), "node0", "127.0.0.1:3306"),
                member(
                    NodeId(Uuid([3; 16])),
                    "a-very-long-node-name-that-exceeds-32-bytes",
                    "x",
                ),
            ],
            my_index: Some(1),
            proto_ver: 4,
        };
        let buffer = ViewBuffer::new(&view, 0x2d17f);
        // SAFETY: the buffer holds a header and two members as built above.
        let info = unsafe { &*buffer.as_ptr() };
        assert_eq!(info.state_id.seqno, 7);
        assert_eq!(info.view, 3);
        assert_eq!(info.my_idx, 1);
        assert_eq!(info.memb_num, 2);
        // SAFETY: members[1] is within the allocation.
        let second = unsafe { &*info.members.as_ptr().add(1) };
        assert_eq!(second.id.data, [3; 16]);
        // SAFETY: name is NUL-terminated within its 32 bytes (we wrote at most 31).
        let name = unsafe { CStr::from_ptr(second.name.as_ptr()) }
            .to_str()
            .unwrap();
        assert_eq!(name.len(), 31);
        assert!(view.members[1].name.starts_with(name));
    }

    #[test]
    fn meta_round_trips() {
        let meta = TrxMeta {
            gtid: "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b:12".parse().unwrap(),
            source: NodeId(Uuid([9; 16])),
            trx_id: 44,
            conn_id: 5,
            depends_on: Seqno(10),
        };
        assert_eq!(meta_from_c(&meta_to_c(&meta)), meta);
    }
}
