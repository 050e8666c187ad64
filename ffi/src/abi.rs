//! The wsrep API v26 C ABI (wsrep-API commit 65608d3, the `v26` head wsrep-lib pins), as
//! `#[repr(C)]` Rust types. Layout is the ABI: sizes and offsets are checked at compile time
//! against the values in the provider contract (x86-64).
//!
//! Names follow the C header (`wsrep_*_t`) so that a reader can grep both sides.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

pub const WSREP_INTERFACE_VERSION: &std::ffi::CStr = c"26";

/// `wsrep_status_t`
pub type wsrep_status_t = c_int;
pub const WSREP_OK: wsrep_status_t = 0;
pub const WSREP_WARNING: wsrep_status_t = 1;
pub const WSREP_TRX_MISSING: wsrep_status_t = 2;
pub const WSREP_TRX_FAIL: wsrep_status_t = 3;
pub const WSREP_BF_ABORT: wsrep_status_t = 4;
pub const WSREP_SIZE_EXCEEDED: wsrep_status_t = 5;
pub const WSREP_CONN_FAIL: wsrep_status_t = 6;
pub const WSREP_NODE_FAIL: wsrep_status_t = 7;
pub const WSREP_FATAL: wsrep_status_t = 8;
pub const WSREP_NOT_IMPLEMENTED: wsrep_status_t = 9;
pub const WSREP_NOT_ALLOWED: wsrep_status_t = 10;

/// `wsrep_cb_status_t`
pub type wsrep_cb_status_t = c_int;
pub const WSREP_CB_SUCCESS: wsrep_cb_status_t = 0;
pub const WSREP_CB_FAILURE: wsrep_cb_status_t = 1;

/// `wsrep_log_level_t`
pub type wsrep_log_level_t = c_int;
pub const WSREP_LOG_FATAL: wsrep_log_level_t = 0;
pub const WSREP_LOG_ERROR: wsrep_log_level_t = 1;
pub const WSREP_LOG_WARN: wsrep_log_level_t = 2;
pub const WSREP_LOG_INFO: wsrep_log_level_t = 3;
pub const WSREP_LOG_DEBUG: wsrep_log_level_t = 4;

pub type wsrep_cap_t = u32;
pub const WSREP_CAP_MULTI_MASTER: wsrep_cap_t = 1 << 0;
pub const WSREP_CAP_CERTIFICATION: wsrep_cap_t = 1 << 1;
pub const WSREP_CAP_PARALLEL_APPLYING: wsrep_cap_t = 1 << 2;
pub const WSREP_CAP_TRX_REPLAY: wsrep_cap_t = 1 << 3;
pub const WSREP_CAP_ISOLATION: wsrep_cap_t = 1 << 4;
pub const WSREP_CAP_PAUSE: wsrep_cap_t = 1 << 5;
pub const WSREP_CAP_CAUSAL_READS: wsrep_cap_t = 1 << 6;
pub const WSREP_CAP_INCREMENTAL_WRITESET: wsrep_cap_t = 1 << 8;
pub const WSREP_CAP_UNORDERED: wsrep_cap_t = 1 << 12;
pub const WSREP_CAP_PREORDERED: wsrep_cap_t = 1 << 14;
pub const WSREP_CAP_STREAMING: wsrep_cap_t = 1 << 15;
pub const WSREP_CAP_NBO: wsrep_cap_t = 1 << 17;

pub type wsrep_seqno_t = i64;
pub type wsrep_trx_id_t = u64;
pub type wsrep_conn_id_t = u64;
pub type wsrep_bool_t = bool;

/// `wsrep_uuid_t`: a union of 16 bytes and a `size_t`, hence 8-byte aligned.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct wsrep_uuid_t {
    pub data: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wsrep_gtid_t {
    pub uuid: wsrep_uuid_t,
    pub seqno: wsrep_seqno_t,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wsrep_stid_t {
    pub node: wsrep_uuid_t,
    pub trx: wsrep_trx_id_t,
    pub conn: wsrep_conn_id_t,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wsrep_trx_meta_t {
    pub gtid: wsrep_gtid_t,
    pub stid: wsrep_stid_t,
    pub depends_on: wsrep_seqno_t,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wsrep_buf_t {
    pub ptr: *const c_void,
    pub len: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wsrep_ws_handle_t {
    pub trx_id: wsrep_trx_id_t,
    pub opaque: *mut c_void,
}

pub const WSREP_MEMBER_NAME_LEN: usize = 32;
pub const WSREP_INCOMING_LEN: usize = 256;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct wsrep_member_info_t {
    pub id: wsrep_uuid_t,
    pub name: [c_char; WSREP_MEMBER_NAME_LEN],
    pub incoming: [c_char; WSREP_INCOMING_LEN],
}

pub type wsrep_view_status_t = c_int;
pub const WSREP_VIEW_PRIMARY: wsrep_view_status_t = 0;
pub const WSREP_VIEW_NON_PRIMARY: wsrep_view_status_t = 1;
pub const WSREP_VIEW_DISCONNECTED: wsrep_view_status_t = 2;

/// `wsrep_view_info_t`: a 56-byte header followed by `memb_num` members (the C struct
/// declares `members[1]`; we allocate `56 + 304 * n` bytes).
#[repr(C)]
pub struct wsrep_view_info_t {
    pub state_id: wsrep_gtid_t,
    pub view: wsrep_seqno_t,
    pub status: wsrep_view_status_t,
    pub capabilities: wsrep_cap_t,
    pub my_idx: c_int,
    pub memb_num: c_int,
    pub proto_ver: c_int,
    pub members: [wsrep_member_info_t; 0],
}

pub type wsrep_key_type_t = c_int;
pub type wsrep_data_type_t = c_int;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct wsrep_key_t {
    pub key_parts: *const wsrep_buf_t,
    pub key_parts_num: usize,
}

pub type wsrep_var_type_t = c_int;
pub const WSREP_VAR_STRING: wsrep_var_type_t = 0;
pub const WSREP_VAR_INT64: wsrep_var_type_t = 1;
pub const WSREP_VAR_DOUBLE: wsrep_var_type_t = 2;

#[repr(C)]
#[derive(Clone, Copy)]
pub union wsrep_stats_value {
    pub _int64: i64,
    pub _double: f64,
    pub _string: *const c_char,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct wsrep_stats_var {
    pub name: *const c_char,
    pub type_: wsrep_var_type_t,
    pub value: wsrep_stats_value,
}

#[repr(C)]
pub struct wsrep_po_handle_t {
    pub opaque: *mut c_void,
}

pub type wsrep_log_cb_t = Option<unsafe extern "C" fn(wsrep_log_level_t, *const c_char)>;
pub type wsrep_connected_cb_t =
    Option<unsafe extern "C" fn(*mut c_void, *const wsrep_view_info_t) -> wsrep_cb_status_t>;
pub type wsrep_view_cb_t = Option<
    unsafe extern "C" fn(
        *mut c_void,
        *mut c_void,
        *const wsrep_view_info_t,
        *const c_char,
        usize,
    ) -> wsrep_cb_status_t,
>;
pub type wsrep_sst_request_cb_t =
    Option<unsafe extern "C" fn(*mut c_void, *mut *mut c_void, *mut usize) -> wsrep_cb_status_t>;
pub type wsrep_encrypt_cb_t = Option<unsafe extern "C" fn() -> c_int>;
pub type wsrep_apply_cb_t = Option<
    unsafe extern "C" fn(
        *mut c_void,
        *const wsrep_ws_handle_t,
        u32,
        *const wsrep_buf_t,
        *const wsrep_trx_meta_t,
        *mut wsrep_bool_t,
    ) -> wsrep_cb_status_t,
>;
pub type wsrep_unordered_cb_t =
    Option<unsafe extern "C" fn(*mut c_void, *const wsrep_buf_t) -> wsrep_cb_status_t>;
pub type wsrep_sst_donate_cb_t = Option<
    unsafe extern "C" fn(
        *mut c_void,
        *mut c_void,
        *const wsrep_buf_t,
        *const wsrep_gtid_t,
        *const wsrep_buf_t,
        wsrep_bool_t,
    ) -> wsrep_cb_status_t,
>;
pub type wsrep_synced_cb_t = Option<unsafe extern "C" fn(*mut c_void) -> wsrep_cb_status_t>;

#[repr(C)]
pub struct wsrep_init_args {
    pub app_ctx: *mut c_void,
    pub node_name: *const c_char,
    pub node_address: *const c_char,
    pub node_incoming: *const c_char,
    pub data_dir: *const c_char,
    pub options: *const c_char,
    pub proto_ver: c_int,
    pub state_id: *const wsrep_gtid_t,
    pub state: *const wsrep_buf_t,
    pub logger_cb: wsrep_log_cb_t,
    pub connected_cb: wsrep_connected_cb_t,
    pub view_cb: wsrep_view_cb_t,
    pub sst_request_cb: wsrep_sst_request_cb_t,
    pub encrypt_cb: wsrep_encrypt_cb_t,
    pub apply_cb: wsrep_apply_cb_t,
    pub unordered_cb: wsrep_unordered_cb_t,
    pub sst_donate_cb: wsrep_sst_donate_cb_t,
    pub synced_cb: wsrep_synced_cb_t,
}

/// `struct wsrep_st`: the provider interface, 45 pointer-sized members.
#[repr(C)]
pub struct wsrep_t {
    pub version: *const c_char,
    pub init: Option<unsafe extern "C" fn(*mut wsrep_t, *const wsrep_init_args) -> wsrep_status_t>,
    pub capabilities: Option<unsafe extern "C" fn(*mut wsrep_t) -> wsrep_cap_t>,
    pub options_set: Option<unsafe extern "C" fn(*mut wsrep_t, *const c_char) -> wsrep_status_t>,
    pub options_get: Option<unsafe extern "C" fn(*mut wsrep_t) -> *mut c_char>,
    pub enc_set_key:
        Option<unsafe extern "C" fn(*mut wsrep_t, *const wsrep_buf_t) -> wsrep_status_t>,
    pub connect: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *const c_char,
            *const c_char,
            *const c_char,
            wsrep_bool_t,
        ) -> wsrep_status_t,
    >,
    pub disconnect: Option<unsafe extern "C" fn(*mut wsrep_t) -> wsrep_status_t>,
    pub recv: Option<unsafe extern "C" fn(*mut wsrep_t, *mut c_void) -> wsrep_status_t>,
    pub assign_read_view: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *mut wsrep_ws_handle_t,
            *const wsrep_gtid_t,
        ) -> wsrep_status_t,
    >,
    pub certify: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            wsrep_conn_id_t,
            *mut wsrep_ws_handle_t,
            u32,
            *mut wsrep_trx_meta_t,
        ) -> wsrep_status_t,
    >,
    pub commit_order_enter: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *const wsrep_ws_handle_t,
            *const wsrep_trx_meta_t,
        ) -> wsrep_status_t,
    >,
    pub commit_order_leave: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *const wsrep_ws_handle_t,
            *const wsrep_trx_meta_t,
            *const wsrep_buf_t,
        ) -> wsrep_status_t,
    >,
    pub release:
        Option<unsafe extern "C" fn(*mut wsrep_t, *mut wsrep_ws_handle_t) -> wsrep_status_t>,
    pub replay_trx: Option<
        unsafe extern "C" fn(*mut wsrep_t, *const wsrep_ws_handle_t, *mut c_void) -> wsrep_status_t,
    >,
    pub abort_certification: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            wsrep_seqno_t,
            wsrep_trx_id_t,
            *mut wsrep_seqno_t,
        ) -> wsrep_status_t,
    >,
    pub rollback: Option<
        unsafe extern "C" fn(*mut wsrep_t, wsrep_trx_id_t, *const wsrep_buf_t) -> wsrep_status_t,
    >,
    pub append_key: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *mut wsrep_ws_handle_t,
            *const wsrep_key_t,
            usize,
            wsrep_key_type_t,
            wsrep_bool_t,
        ) -> wsrep_status_t,
    >,
    pub append_data: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *mut wsrep_ws_handle_t,
            *const wsrep_buf_t,
            usize,
            wsrep_data_type_t,
            wsrep_bool_t,
        ) -> wsrep_status_t,
    >,
    pub sync_wait: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *mut wsrep_gtid_t,
            c_int,
            *mut wsrep_gtid_t,
        ) -> wsrep_status_t,
    >,
    pub last_committed_id:
        Option<unsafe extern "C" fn(*mut wsrep_t, *mut wsrep_gtid_t) -> wsrep_status_t>,
    pub free_connection:
        Option<unsafe extern "C" fn(*mut wsrep_t, wsrep_conn_id_t) -> wsrep_status_t>,
    pub to_execute_start: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            wsrep_conn_id_t,
            *const wsrep_key_t,
            usize,
            *const wsrep_buf_t,
            usize,
            u32,
            *mut wsrep_trx_meta_t,
        ) -> wsrep_status_t,
    >,
    pub to_execute_end: Option<
        unsafe extern "C" fn(*mut wsrep_t, wsrep_conn_id_t, *const wsrep_buf_t) -> wsrep_status_t,
    >,
    pub preordered_collect: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *mut wsrep_po_handle_t,
            *const wsrep_buf_t,
            usize,
            wsrep_bool_t,
        ) -> wsrep_status_t,
    >,
    pub preordered_commit: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *mut wsrep_po_handle_t,
            *const wsrep_uuid_t,
            u32,
            c_int,
            wsrep_bool_t,
        ) -> wsrep_status_t,
    >,
    pub sst_sent:
        Option<unsafe extern "C" fn(*mut wsrep_t, *const wsrep_gtid_t, c_int) -> wsrep_status_t>,
    pub sst_received: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *const wsrep_gtid_t,
            *const wsrep_buf_t,
            c_int,
        ) -> wsrep_status_t,
    >,
    pub snapshot: Option<
        unsafe extern "C" fn(*mut wsrep_t, *const wsrep_buf_t, *const c_char) -> wsrep_status_t,
    >,
    pub stats_get: Option<unsafe extern "C" fn(*mut wsrep_t) -> *mut wsrep_stats_var>,
    pub stats_free: Option<unsafe extern "C" fn(*mut wsrep_t, *mut wsrep_stats_var)>,
    pub stats_reset: Option<unsafe extern "C" fn(*mut wsrep_t)>,
    pub pause: Option<unsafe extern "C" fn(*mut wsrep_t) -> wsrep_seqno_t>,
    pub resume: Option<unsafe extern "C" fn(*mut wsrep_t) -> wsrep_status_t>,
    pub desync: Option<unsafe extern "C" fn(*mut wsrep_t) -> wsrep_status_t>,
    pub resync: Option<unsafe extern "C" fn(*mut wsrep_t) -> wsrep_status_t>,
    pub lock: Option<
        unsafe extern "C" fn(*mut wsrep_t, *const c_char, wsrep_bool_t, u64, i64) -> wsrep_status_t,
    >,
    pub unlock: Option<unsafe extern "C" fn(*mut wsrep_t, *const c_char, u64) -> wsrep_status_t>,
    pub is_locked: Option<
        unsafe extern "C" fn(
            *mut wsrep_t,
            *const c_char,
            *mut u64,
            *mut wsrep_uuid_t,
        ) -> wsrep_bool_t,
    >,
    pub provider_name: *const c_char,
    pub provider_version: *const c_char,
    pub provider_vendor: *const c_char,
    pub free: Option<unsafe extern "C" fn(*mut wsrep_t)>,
    pub dlh: *mut c_void,
    pub ctx: *mut c_void,
}

/// `wsrep_allowlist_service_v1_t`
#[repr(C)]
pub struct wsrep_allowlist_service_v1_t {
    pub allowlist_cb:
        Option<unsafe extern "C" fn(*mut c_void, c_int, *const wsrep_buf_t) -> wsrep_status_t>,
    pub context: *mut c_void,
}

// Layout checks against the contract (§1.3, §1.4, §2.1, §2.2).
const _: () = assert!(std::mem::size_of::<wsrep_uuid_t>() == 16);
const _: () = assert!(std::mem::align_of::<wsrep_uuid_t>() == 8);
const _: () = assert!(std::mem::size_of::<wsrep_gtid_t>() == 24);
const _: () = assert!(std::mem::size_of::<wsrep_stid_t>() == 32);
const _: () = assert!(std::mem::size_of::<wsrep_trx_meta_t>() == 64);
const _: () = assert!(std::mem::size_of::<wsrep_buf_t>() == 16);
const _: () = assert!(std::mem::size_of::<wsrep_ws_handle_t>() == 16);
const _: () = assert!(std::mem::size_of::<wsrep_key_t>() == 16);
const _: () = assert!(std::mem::size_of::<wsrep_member_info_t>() == 304);
const _: () = assert!(std::mem::size_of::<wsrep_view_info_t>() == 56);
const _: () = assert!(std::mem::offset_of!(wsrep_view_info_t, members) == 56);
const _: () = assert!(std::mem::size_of::<wsrep_stats_var>() == 24);
const _: () = assert!(std::mem::offset_of!(wsrep_stats_var, value) == 16);
const _: () = assert!(std::mem::size_of::<wsrep_init_args>() == 144);
const _: () = assert!(std::mem::offset_of!(wsrep_init_args, synced_cb) == 136);
const _: () = assert!(std::mem::size_of::<wsrep_t>() == 360);
const _: () = assert!(std::mem::offset_of!(wsrep_t, provider_name) == 312);
const _: () = assert!(std::mem::offset_of!(wsrep_t, ctx) == 352);
const _: () = assert!(std::mem::size_of::<bool>() == 1);
