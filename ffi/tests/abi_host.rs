//! The provider as mariadbd sees it, without mariadbd: `dlopen` the built `libtrireme.so`,
//! resolve what 10.11 resolves, fill a `wsrep_t` with `wsrep_loader`, and drive init,
//! connect, recv, a transaction, disconnect and free through the C function pointers, with
//! small C callbacks standing in for the server (contract §1, §3, §4).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;
use trireme::abi::*;

/// The cdylib of this build profile (target/<profile>/libtrireme.so, next to deps/), else
/// the release one. `cargo test` builds only the rlib, so a `cargo build` must come first
/// (scripts/test.sh does `cargo build --release` before testing).
fn library_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let candidates = [
        profile_dir.join("libtrireme.so"),
        profile_dir.parent().unwrap().join("release/libtrireme.so"),
    ];
    candidates.iter().find(|p| p.exists()).cloned().unwrap_or_else(|| {
        panic!("no libtrireme.so at {candidates:?}: run `cargo build --release -p trireme-ffi` first")
    })
}

struct Library(*mut c_void);

impl Library {
    fn open() -> Library {
        let path = CString::new(library_path().to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; RTLD_NOW|RTLD_LOCAL is what mariadbd uses.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(
            !handle.is_null(),
            "dlopen {} failed",
            library_path().display()
        );
        Library(handle)
    }

    fn symbol(&self, name: &str) -> *mut c_void {
        let name = CString::new(name).unwrap();
        // SAFETY: a live handle and a valid C string.
        unsafe { libc::dlsym(self.0, name.as_ptr()) }
    }
}

// ---- the stand-in server -----------------------------------------------------------------

static LAST_VIEW_MEMBERS: AtomicI64 = AtomicI64::new(-2);
static LAST_VIEW_STATUS: AtomicI64 = AtomicI64::new(-1);
static SYNCED: AtomicUsize = AtomicUsize::new(0);
static CONNECTED: AtomicUsize = AtomicUsize::new(0);
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn logger(_level: wsrep_log_level_t, msg: *const c_char) {
    // SAFETY: the provider passes a valid C string for the call.
    let text = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    LOG.lock().unwrap().push(text);
}

unsafe extern "C" fn connected(
    _ctx: *mut c_void,
    view: *const wsrep_view_info_t,
) -> wsrep_cb_status_t {
    // SAFETY: the provider passes a valid view for the call.
    let view = unsafe { &*view };
    assert!(
        view.my_idx >= 0 && view.my_idx < view.memb_num,
        "connected_cb needs my_idx"
    );
    CONNECTED.fetch_add(1, Ordering::SeqCst);
    WSREP_CB_SUCCESS
}

unsafe extern "C" fn view_cb(
    _app: *mut c_void,
    recv_ctx: *mut c_void,
    view: *const wsrep_view_info_t,
    _state: *const c_char,
    _len: usize,
) -> wsrep_cb_status_t {
    assert_eq!(
        recv_ctx as usize, 0xA11CE,
        "view_cb must carry the applier's recv_ctx"
    );
    // SAFETY: as above.
    let view = unsafe { &*view };
    LAST_VIEW_MEMBERS.store(i64::from(view.memb_num), Ordering::SeqCst);
    LAST_VIEW_STATUS.store(i64::from(view.status), Ordering::SeqCst);
    WSREP_CB_SUCCESS
}

unsafe extern "C" fn synced(_ctx: *mut c_void) -> wsrep_cb_status_t {
    SYNCED.fetch_add(1, Ordering::SeqCst);
    WSREP_CB_SUCCESS
}

unsafe extern "C" fn apply(
    _ctx: *mut c_void,
    _handle: *const wsrep_ws_handle_t,
    _flags: u32,
    _data: *const wsrep_buf_t,
    _meta: *const wsrep_trx_meta_t,
    _exit: *mut wsrep_bool_t,
) -> wsrep_cb_status_t {
    WSREP_CB_SUCCESS
}

fn init_args(data_dir: &CStr, options: &CStr, state: &wsrep_gtid_t) -> wsrep_init_args {
    wsrep_init_args {
        app_ctx: std::ptr::null_mut(),
        node_name: c"abi-host".as_ptr(),
        node_address: c"127.0.0.1:0".as_ptr(),
        node_incoming: c"127.0.0.1:3306".as_ptr(),
        data_dir: data_dir.as_ptr(),
        options: options.as_ptr(),
        proto_ver: 4,
        state_id: state,
        state: std::ptr::null(),
        logger_cb: Some(logger),
        connected_cb: Some(connected),
        view_cb: Some(view_cb),
        sst_request_cb: None,
        encrypt_cb: None,
        apply_cb: Some(apply),
        unordered_cb: None,
        sst_donate_cb: None,
        synced_cb: Some(synced),
    }
}

struct SendPtr(*mut wsrep_t);
// SAFETY: the provider is thread-safe by contract (mariadbd calls it from many threads).
unsafe impl Send for SendPtr {}

#[test]
fn mariadbd_s_view_of_the_provider_holds_from_loader_to_free() {
    let lib = Library::open();
    // The data symbol is a char* holding "26" (contract §1.1 step 4).
    let version = lib.symbol("wsrep_interface_version") as *const *const c_char;
    assert!(!version.is_null());
    // SAFETY: the symbol is a `const char*` variable pointing to a static string.
    assert_eq!(unsafe { CStr::from_ptr(*version) }.to_str().unwrap(), "26");
    for name in [
        "wsrep_init_allowlist_service_v1",
        "wsrep_deinit_allowlist_service_v1",
    ] {
        assert!(!lib.symbol(name).is_null(), "{name} is required by 10.11");
    }
    let isolation = lib.symbol("wsrep_node_isolation_mode_set_v1");
    // SAFETY: the exported function has this signature.
    let isolation: extern "C" fn(c_int) -> c_int = unsafe { std::mem::transmute(isolation) };
    assert_eq!(isolation(7), 1, "invalid mode refused");
    assert_eq!(isolation(0), 0);

    let loader = lib.symbol("wsrep_loader");
    // SAFETY: wsrep_loader has this signature.
    let loader: unsafe extern "C" fn(*mut wsrep_t) -> c_int =
        unsafe { std::mem::transmute(loader) };
    // SAFETY: an all-zero wsrep_t is what a malloc'ed one may contain; the loader fills it.
    let mut table: Box<wsrep_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: a valid, writable wsrep_t.
    assert_eq!(unsafe { loader(&mut *table) }, 0);
    let w: *mut wsrep_t = &mut *table;
    // SAFETY: the loader filled every member.
    let t = unsafe { &*w };
    // SAFETY: `version` is a static NUL-terminated string of the library.
    assert_eq!(unsafe { CStr::from_ptr(t.version) }.to_str().unwrap(), "26");
    let members = [
        t.init.is_some(),
        t.capabilities.is_some(),
        t.options_set.is_some(),
        t.options_get.is_some(),
        t.enc_set_key.is_some(),
        t.connect.is_some(),
        t.disconnect.is_some(),
        t.recv.is_some(),
        t.assign_read_view.is_some(),
        t.certify.is_some(),
        t.commit_order_enter.is_some(),
        t.commit_order_leave.is_some(),
        t.release.is_some(),
        t.replay_trx.is_some(),
        t.abort_certification.is_some(),
        t.rollback.is_some(),
        t.append_key.is_some(),
        t.append_data.is_some(),
        t.sync_wait.is_some(),
        t.last_committed_id.is_some(),
        t.free_connection.is_some(),
        t.to_execute_start.is_some(),
        t.to_execute_end.is_some(),
        t.preordered_collect.is_some(),
        t.preordered_commit.is_some(),
        t.sst_sent.is_some(),
        t.sst_received.is_some(),
        t.snapshot.is_some(),
        t.stats_get.is_some(),
        t.stats_free.is_some(),
        t.stats_reset.is_some(),
        t.pause.is_some(),
        t.resume.is_some(),
        t.desync.is_some(),
        t.resync.is_some(),
        t.lock.is_some(),
        t.unlock.is_some(),
        t.is_locked.is_some(),
        t.free.is_some(),
    ];
    assert!(
        members.iter().all(|m| *m),
        "a member of wsrep_t is NULL: {members:?}"
    );
    for text in [t.provider_name, t.provider_version, t.provider_vendor] {
        assert!(!text.is_null());
    }
    // SAFETY: static strings of the provider.
    let provider_version = unsafe { CStr::from_ptr(t.provider_version) }
        .to_str()
        .unwrap();
    assert!(
        provider_version.starts_with("26.4.") && provider_version.contains("trireme"),
        "{provider_version}"
    );
    // SAFETY: (all calls below) `w` is the table the loader filled; arguments are valid for
    // each call as the contract describes.
    unsafe {
        // free before init, and twice: nothing happens (contract §1.1: free is called twice).
        (t.free.unwrap())(w);
        (t.free.unwrap())(w);
        let dir = std::env::temp_dir().join(format!("trireme-abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data_dir = CString::new(format!("{}/", dir.display())).unwrap();
        let undefined = wsrep_gtid_t {
            uuid: wsrep_uuid_t::default(),
            seqno: -1,
        };
        // A wrong option fails init, naming it.
        let bad = init_args(
            &data_dir,
            c"gcache.size=16M; evs.suspekt_timeout=PT1S",
            &undefined,
        );
        assert_eq!((t.init.unwrap())(w, &bad), WSREP_NODE_FAIL);
        assert!(LOG
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("evs.suspekt_timeout")));
        (t.free.unwrap())(w);
        // A good one, then a one-node bootstrap.
        let good = init_args(&data_dir, c"gcache.size=8M; base_port=0", &undefined);
        assert_eq!((t.init.unwrap())(w, &good), WSREP_OK);
        let options = (t.options_get.unwrap())(w);
        assert!(CStr::from_ptr(options)
            .to_str()
            .unwrap()
            .contains("repl.max_ws_size = "));
        libc::free(options.cast());
        assert_eq!(
            (t.connect.unwrap())(w, c"abi".as_ptr(), c"gcomm://".as_ptr(), c"".as_ptr(), true),
            WSREP_OK
        );
        let applier = {
            let w = SendPtr(w);
            std::thread::spawn(move || {
                let w = w;
                ((*w.0).recv.unwrap())(w.0, 0xA11CE as *mut c_void)
            })
        };
        while SYNCED.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(CONNECTED.load(Ordering::SeqCst), 1);
        assert_eq!(LAST_VIEW_MEMBERS.load(Ordering::SeqCst), 1);
        let mut committed = wsrep_gtid_t::default();
        assert_eq!((t.last_committed_id.unwrap())(w, &mut committed), WSREP_OK);
        let before = committed.seqno;
        // One transaction, the way a client thread drives it (contract §4.1).
        let mut handle = wsrep_ws_handle_t {
            trx_id: 7,
            opaque: std::ptr::null_mut(),
        };
        let parts =
            [b"db".as_slice(), b"t".as_slice(), b"\x00\x01".as_slice()].map(|p| wsrep_buf_t {
                ptr: p.as_ptr().cast(),
                len: p.len(),
            });
        let key = wsrep_key_t {
            key_parts: parts.as_ptr(),
            key_parts_num: 3,
        };
        assert_eq!(
            (t.append_key.unwrap())(w, &mut handle, &key, 1, 3, true),
            WSREP_OK
        );
        let data = b"row events";
        let buf = wsrep_buf_t {
            ptr: data.as_ptr().cast(),
            len: data.len(),
        };
        assert_eq!(
            (t.append_data.unwrap())(w, &mut handle, &buf, 1, 0, true),
            WSREP_OK
        );
        let mut meta = wsrep_trx_meta_t::default();
        assert_eq!(
            (t.certify.unwrap())(w, 1, &mut handle, WSREP_FLAG_START_END, &mut meta),
            WSREP_OK
        );
        assert_eq!(meta.gtid.seqno, before + 1);
        assert_eq!((t.commit_order_enter.unwrap())(w, &handle, &meta), WSREP_OK);
        assert_eq!(
            (t.commit_order_leave.unwrap())(w, &handle, &meta, std::ptr::null()),
            WSREP_OK
        );
        assert_eq!((t.release.unwrap())(w, &mut handle), WSREP_OK);
        assert!(handle.opaque.is_null());
        // Release of an unknown handle, abort of an unknown victim: both OK (gotcha 9).
        let mut unknown = wsrep_ws_handle_t {
            trx_id: u64::MAX,
            opaque: std::ptr::null_mut(),
        };
        assert_eq!((t.release.unwrap())(w, &mut unknown), WSREP_OK);
        let mut victim_seqno = 0;
        assert_eq!(
            (t.abort_certification.unwrap())(w, 5, 999, &mut victim_seqno),
            WSREP_OK
        );
        assert_eq!(victim_seqno, -1);
        (t.last_committed_id.unwrap())(w, &mut committed);
        assert_eq!(committed.seqno, before + 1);
        // Status variables: NULL-terminated, no NULL strings, freed by stats_free.
        let stats = (t.stats_get.unwrap())(w);
        let mut count = 0;
        while !(*stats.add(count)).name.is_null() {
            let var = &*stats.add(count);
            if var.type_ == WSREP_VAR_STRING {
                assert!(!var.value._string.is_null());
            }
            count += 1;
        }
        assert_eq!(count, 56, "Galera's 56 provider status variables");
        (t.stats_free.unwrap())(w, stats);
        // Not implemented members answer so, without crashing.
        assert_eq!(
            (t.snapshot.unwrap())(w, std::ptr::null(), std::ptr::null()),
            WSREP_NOT_IMPLEMENTED
        );
        // Disconnect: the final view reaches the applier, whose recv returns.
        assert_eq!((t.disconnect.unwrap())(w), WSREP_OK);
        assert_eq!(applier.join().unwrap(), WSREP_OK);
        assert_eq!(
            LAST_VIEW_STATUS.load(Ordering::SeqCst),
            i64::from(WSREP_VIEW_DISCONNECTED)
        );
        assert_eq!(LAST_VIEW_MEMBERS.load(Ordering::SeqCst), 0);
        (t.free.unwrap())(w);
        (t.free.unwrap())(w);
        let saved = std::fs::read_to_string(dir.join("grastate.dat")).unwrap();
        assert!(
            saved.contains(&format!("seqno:   {}", before + 1)),
            "{saved}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

const WSREP_FLAG_START_END: u32 = (1 << 6) | 1;
