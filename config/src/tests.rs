//! Cross-cutting tests of the options as a whole: the comparison with what a live Galera
//! 4.23 node printed (`reference/galera-4.23-provider-options.tsv`), MariaDB's read-back of
//! `repl.max_ws_size`, MTR's option strings, run-time all-or-nothing, and random strings.

use std::time::Duration;

use crate::registry::REGISTRY;
use crate::*;

const GALERA_REFERENCE: &str = include_str!("../../reference/galera-4.23-provider-options.tsv");

/// Options where Trireme deliberately prints something else than Galera 4.23 for the
/// reference node, with the reason. Empty: a fresh Trireme node prints Galera's values.
const INTENTIONAL_DIFFERENCES: &[(&str, &str)] = &[];

/// The options string the reference Galera node printed (second column).
fn galera_options_string() -> &'static str {
    GALERA_REFERENCE
        .lines()
        .find_map(|line| line.strip_prefix("wsrep_provider_options\t"))
        .expect("the reference file has a wsrep_provider_options line")
}

/// The reference string split independently of `parse_pairs`: `key = value; ` pairs.
fn galera_pairs() -> Vec<(String, String)> {
    galera_options_string()
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (k, v) = s.split_once('=').expect("key = value");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// The node the reference was taken from: MTR-style, node address 127.0.0.1, base port
/// 14567, data dir /tmp/g1/data/.
fn reference_ctx() -> InitContext {
    InitContext {
        node_address: "127.0.0.1".into(),
        data_dir: "/tmp/g1/data/".into(),
        node_name: "node1".into(),
    }
}

fn reference_node() -> Options {
    Options::from_init(&reference_ctx(), "base_port=14567").unwrap()
}

/// Keys of a rendered string, in order.
fn rendered_keys(rendered: &str) -> Vec<String> {
    rendered
        .split("; ")
        .filter(|s| !s.is_empty())
        .map(|s| s.split(" = ").next().unwrap_or_default().to_string())
        .collect()
}

/// MariaDB's `get_provider_option_value` (sql/wsrep_var.cc): `strstr` for the key,
/// `strtok_r(.., "=")`, `strtok_r(NULL, ";")`, then `strtoul(.., 10)`.
fn mariadb_read_max_ws_size(options: &str) -> Option<u64> {
    let from_key = &options[options.find("repl.max_ws_size")?..];
    let after_eq = &from_key[from_key.find('=')? + 1..];
    let token = after_eq.split(';').next()?;
    let digits: String = token
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

#[test]
fn fresh_node_reproduces_every_galera_value_of_the_reference_node() {
    let rendered = reference_node().render();
    let ours = reference_node();
    let mut mismatches = Vec::new();
    for (key, galera_value) in galera_pairs() {
        if INTENTIONAL_DIFFERENCES.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let trireme_value = ours.get(&key);
        if trireme_value != Some(galera_value.as_str()) {
            mismatches.push(format!(
                "{key}: Galera '{galera_value}', Trireme {trireme_value:?}"
            ));
        }
        assert!(
            rendered.contains(&format!("{key} = {galera_value}; ")),
            "{key} is not rendered as Galera does"
        );
    }
    assert!(
        mismatches.is_empty(),
        "differences from Galera:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn fresh_node_shows_exactly_galera_keys_in_galera_order_plus_trireme_keys() {
    let rendered = reference_node().render();
    let keys = rendered_keys(&rendered);
    let galera_keys: Vec<String> = galera_pairs().into_iter().map(|(k, _)| k).collect();
    let our_galera_keys: Vec<String> = keys
        .iter()
        .filter(|k| !k.starts_with("trireme."))
        .cloned()
        .collect();
    assert_eq!(our_galera_keys, galera_keys);
    let trireme_keys: Vec<&str> = REGISTRY
        .iter()
        .map(|s| s.key)
        .filter(|k| k.starts_with("trireme."))
        .collect();
    assert!(keys.ends_with(
        &trireme_keys
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    ));
    // Galera's print format: "key = value; " for every pair, trailing "; " included.
    assert!(rendered.starts_with("base_dir = /tmp/g1/data/; base_host = 127.0.0.1; "));
    assert!(rendered.ends_with("; "));
}

#[test]
fn every_galera_reference_pair_is_accepted_at_init_and_rendered_back() {
    let options = Options::from_init(&reference_ctx(), galera_options_string()).unwrap();
    for (key, value) in galera_pairs() {
        assert_eq!(options.get(&key), Some(value.as_str()), "{key}");
    }
    // Given explicitly or derived, the same node comes out.
    assert_eq!(options.render(), reference_node().render());
}

#[test]
fn restoring_a_saved_options_string_at_run_time_changes_nothing() {
    // MTR: `--let $orig = SELECT @@wsrep_provider_options` ... `SET GLOBAL
    // wsrep_provider_options = '$orig'` (galera_gcs_fc_limit, galera_var_desync_on).
    let mut options = reference_node();
    let saved = options.render();
    let changes = options.set("gcs.fc_limit=1; repl.max_ws_size=512").unwrap();
    assert_eq!(changes.len(), 2);
    let restored = options.set(&saved).unwrap();
    assert_eq!(
        restored,
        vec![
            Change::Set {
                key: "gcs.fc_limit",
                old: Some("1".into()),
                new: "16".into()
            },
            Change::Set {
                key: "repl.max_ws_size",
                old: Some("512".into()),
                new: "2147483647".into()
            },
        ]
    );
    assert_eq!(options.render(), saved);
    // Also Galera's own string, with Trireme's keys missing, is accepted as is.
    assert_eq!(options.set(galera_options_string()), Ok(vec![]));
}

#[test]
fn repl_max_ws_size_is_always_readable_the_way_mariadb_reads_it() {
    let mut options = reference_node();
    let rendered = options.render();
    assert_eq!(
        rendered.matches("repl.max_ws_size").count(),
        1,
        "the key must be unique"
    );
    assert_eq!(mariadb_read_max_ws_size(&rendered), Some(2_147_483_647));
    for (given, expected) in [
        ("10000", 10_000),
        ("0x400", 1_024),
        ("1K", 1_024),
        ("+20000", 20_000),
    ] {
        options.set(&format!("repl.max_ws_size={given}")).unwrap();
        assert_eq!(
            mariadb_read_max_ws_size(&options.render()),
            Some(expected),
            "{given}"
        );
        assert_eq!(
            options.get("repl.max_ws_size"),
            Some(expected.to_string().as_str())
        );
    }
    let at_init = Options::from_init(&reference_ctx(), "repl.max_ws_size=1M").unwrap();
    assert_eq!(mariadb_read_max_ws_size(&at_init.render()), Some(1 << 20));
}

#[test]
fn max_ws_size_bytes_is_capped_at_trireme_frame_limit() {
    let options = reference_node();
    assert_eq!(options.max_ws_size_bytes(), 1 << 30);
    let small = Options::from_init(&reference_ctx(), "repl.max_ws_size=1024").unwrap();
    assert_eq!(small.max_ws_size_bytes(), 1024);
}

#[test]
fn getters_return_galera_defaults_on_a_fresh_node() {
    let o = reference_node();
    assert_eq!(o.node_name(), "node1");
    assert_eq!(o.base_dir(), std::path::PathBuf::from("/tmp/g1/data/"));
    assert_eq!(o.base_host(), Some("127.0.0.1"));
    assert_eq!(o.base_port(), 14567);
    assert_eq!(o.listen_addr().to_string(), "tcp://0.0.0.0:14567");
    assert_eq!(
        o.ist_recv_addr().map(|a| a.to_string()),
        Some("tcp://127.0.0.1:14568".into())
    );
    assert_eq!(o.ist_recv_bind(), None);
    assert!(!o.ssl_enabled());
    assert_eq!(o.suspect_timeout(), Duration::from_secs(5));
    assert_eq!(o.inactive_timeout(), Duration::from_secs(15));
    assert_eq!(o.install_timeout(), Duration::from_millis(7_500));
    assert_eq!(o.keepalive_period(), Duration::from_secs(1));
    assert_eq!(o.inactive_check_period(), Duration::from_millis(500));
    assert_eq!(o.causal_read_timeout(), Duration::from_secs(30));
    assert_eq!(o.fc_limit(), 16);
    assert_eq!(o.fc_factor(), 1.0);
    assert_eq!(o.pc_weight(), 1);
    assert!(!o.pc_ignore_sb());
    assert!(o.pc_recovery());
    assert!(!o.pc_bootstrap());
    assert_eq!(o.pc_wait_prim_timeout(), Duration::from_secs(30));
    assert_eq!(o.gcache_dir(), std::path::PathBuf::from("/tmp/g1/data/"));
    assert_eq!(o.gcache_name(), "galera.cache");
    assert_eq!(
        o.gcache_file(),
        std::path::PathBuf::from("/tmp/g1/data/galera.cache")
    );
    assert_eq!(o.gcache_size_bytes(), 128 << 20);
    assert_eq!(o.gcache_page_size_bytes(), 128 << 20);
    assert!(o.gcache_recover());
    assert_eq!(o.segment(), 0);
    assert_eq!(o.gmcast_isolate(), 0);
    assert!(!o.debug_log());
    assert!(!o.cert_log_conflicts());
    assert_eq!(o.shards_setting(), None);
    assert!((1..=8).contains(&o.shards()));
    assert_eq!(o.transport(), TransportChoice::Auto);
    assert_eq!(o.pinning(), Pinning::None);
    assert_eq!(o.profile(), "default");
    assert_eq!(o.spin_budget_us(), 50);
    assert_eq!(o.election_timeout(), Duration::from_secs(1));
    assert_eq!(o.batch_max_bytes(), 1 << 20);
}

#[test]
fn getters_follow_values_set_in_the_options_string() {
    let o = Options::from_init(
        &reference_ctx(),
        "evs.suspect_timeout=PT10S; evs.inactive_timeout=PT30S; evs.install_timeout=PT15S; \
         evs.keepalive_period=PT2S; repl.causal_read_timeout=PT90S; gcs.fc_limit=100; \
         gcs.fc_factor=0.8; pc.weight=3; pc.ignore_sb=true; pc.recovery=off; \
         pc.wait_prim_timeout=PT60S; gcache.dir=/cache; gcache.name=/abs/ring; gcache.size=10M; \
         gcache.page_size=64M; gcache.recover=no; gmcast.segment=2; debug=yes; \
         cert.log_conflicts=ON; trireme.shards=4; trireme.transport=portable; \
         trireme.pinning=0,2; trireme.profile=small-vm; trireme.spin_budget_us=0; \
         trireme.election_timeout=0.5; trireme.batch_max_bytes=64K",
    )
    .unwrap();
    assert_eq!(o.suspect_timeout(), Duration::from_secs(10));
    assert_eq!(o.inactive_timeout(), Duration::from_secs(30));
    assert_eq!(o.install_timeout(), Duration::from_secs(15));
    assert_eq!(o.keepalive_period(), Duration::from_secs(2));
    assert_eq!(o.causal_read_timeout(), Duration::from_secs(90));
    assert_eq!(o.fc_limit(), 100);
    assert_eq!(o.fc_factor(), 0.8);
    assert_eq!(o.pc_weight(), 3);
    assert!(o.pc_ignore_sb());
    assert!(!o.pc_recovery());
    assert_eq!(o.pc_wait_prim_timeout(), Duration::from_secs(60));
    assert_eq!(o.gcache_dir(), std::path::PathBuf::from("/cache"));
    assert_eq!(o.gcache_file(), std::path::PathBuf::from("/abs/ring"));
    assert_eq!(o.gcache_size_bytes(), 10 << 20);
    assert_eq!(o.gcache_page_size_bytes(), 64 << 20);
    assert!(!o.gcache_recover());
    assert_eq!(o.segment(), 2);
    assert!(o.debug_log());
    assert!(o.cert_log_conflicts());
    assert_eq!(o.shards_setting(), Some(4));
    assert_eq!(o.shards(), 4);
    assert_eq!(o.transport(), TransportChoice::Portable);
    assert_eq!(o.pinning(), Pinning::Cores(vec![0, 2]));
    assert_eq!(o.profile(), "small-vm");
    assert_eq!(o.spin_budget_us(), 0);
    assert_eq!(o.election_timeout(), Duration::from_millis(500));
    assert_eq!(o.batch_max_bytes(), 64 << 10);
    // gcomm-normalised options are shown as Galera shows them after connect.
    assert_eq!(o.get("pc.ignore_sb"), Some("true"));
    assert_eq!(o.get("pc.recovery"), Some("false"));
    assert_eq!(o.get("trireme.election_timeout"), Some("PT0.5S"));
    // Options Galera keeps verbatim are shown as given.
    assert_eq!(o.get("cert.log_conflicts"), Some("ON"));
    assert_eq!(o.get("repl.causal_read_timeout"), Some("PT90S"));
}

#[test]
fn mtr_suite_option_strings_are_accepted() {
    // From mysql-test/suite/galera/galera_2nodes.cnf and the galera_3nodes IPv6/SSL configs.
    let common = "repl.causal_read_timeout=PT90S;base_port=16001;evs.suspect_timeout=PT10S;\
                  evs.inactive_timeout=PT30S;evs.install_timeout=PT15S;pc.wait_prim_timeout=PT60S;\
                  gcache.size=10M";
    let plain = Options::from_init(&reference_ctx(), common).unwrap();
    assert_eq!(plain.listen_addr().to_string(), "tcp://0.0.0.0:16001");

    let ipv6 = Options::from_init(
        &reference_ctx(),
        &format!("{common};gmcast.listen_addr=tcp://[::]:16001;ist.recv_addr=[::1]"),
    )
    .unwrap();
    assert_eq!(ipv6.listen_addr().to_string(), "tcp://[::]:16001");
    assert_eq!(
        ipv6.ist_recv_addr().unwrap().to_string(),
        "tcp://[::1]:16002"
    );
    assert_eq!(ipv6.get("ist.recv_addr"), Some("[::1]"));

    let host_only = Options::from_init(
        &reference_ctx(),
        &format!("{common};gmcast.listen_addr=127.0.0.3;pc.ignore_quorum=TRUE;pc.wait_prim=FALSE"),
    )
    .unwrap();
    assert_eq!(host_only.listen_addr().to_string(), "tcp://127.0.0.3:16001");
    assert_eq!(host_only.get("pc.ignore_quorum"), Some("true"));

    let ssl = Options::from_init(
        &reference_ctx(),
        &format!(
            "socket.ssl=yes;socket.ssl_cert=/std_data/cacert.pem;\
             socket.ssl_key=/std_data/cakey.pem;cert.log_conflicts=YES;{common}"
        ),
    )
    .unwrap();
    assert!(ssl.ssl_enabled());
    assert_eq!(ssl.listen_addr().to_string(), "ssl://0.0.0.0:16001");
    assert_eq!(
        ssl.ist_recv_addr().unwrap().to_string(),
        "ssl://127.0.0.1:16002"
    );
    // Galera's gu::ssl_init_options shows these once SSL is on.
    assert_eq!(ssl.get("socket.ssl"), Some("YES"));
    assert_eq!(ssl.get("socket.ssl_reload"), Some("1"));
    assert_eq!(ssl.get("socket.ssl_cipher"), Some(""));

    let dynamic = Options::from_init(
        &reference_ctx(),
        &format!(
            "socket.ssl=yes;socket.ssl_ca=/ca.pem;socket.ssl_cert=/c.pem;socket.ssl_key=/k.pem;\
             socket.dynamic=true;{common}"
        ),
    )
    .unwrap();
    assert_eq!(dynamic.listen_addr().to_string(), "tcp://0.0.0.0:16001");

    for extra in [
        "gcache.size=1",
        "gcs.max_packet_size=64",
        "gmcast.segment=1",
        "pc.weight=2",
        "gcs.stateless=1",
        "gcache.recover=yes",
        "repl.key_format=FLAT16",
        "ist.recv_bind=127.0.0.1",
    ] {
        assert!(
            Options::from_init(&reference_ctx(), &format!("{common};{extra}")).is_ok(),
            "{extra}"
        );
    }
}

#[test]
fn mtr_run_time_sets_are_accepted() {
    let mut o = Options::from_init(
        &reference_ctx(),
        "evs.suspect_timeout=PT10S;evs.inactive_timeout=PT30S;evs.install_timeout=PT15S",
    )
    .unwrap();
    // galera_3nodes.galera_evs_suspect_timeout: no startup-only relation is re-checked.
    o.set("evs.inactive_timeout=PT100M; evs.suspect_timeout=PT1S")
        .unwrap();
    assert_eq!(o.suspect_timeout(), Duration::from_secs(1));
    for s in [
        "gmcast.isolate=1",
        "gmcast.isolate = 0",
        "pc.ignore_sb=true",
        "pc.weight=3",
        "gcs.fc_limit=1",
        "repl.max_ws_size=512",
        "cert.log_conflicts=YES",
        "debug=1",
        "repl.causal_read_timeout=PT10S",
        "socket.ssl_reload=1",
        "pc.bootstrap=YES",
        "dbug=d,sync.wsrep_apply_cb",
        "signal=wsrep_apply_cb",
    ] {
        assert!(o.set(s).is_ok(), "{s}");
    }
    assert_eq!(o.gmcast_isolate(), 0);
    assert_eq!(o.pc_weight(), 3);
}

#[test]
fn node_address_port_sets_base_port_and_listen_port_overrides_it() {
    let ctx = InitContext {
        node_address: "10.0.0.5:5000".into(),
        ..reference_ctx()
    };
    let o = Options::from_init(&ctx, "").unwrap();
    assert_eq!(o.base_port(), 5000);
    assert_eq!(o.base_host(), Some("10.0.0.5"));
    assert_eq!(o.listen_addr().to_string(), "tcp://0.0.0.0:5000");
    assert_eq!(
        o.ist_recv_addr().unwrap().to_string(),
        "tcp://10.0.0.5:5001"
    );

    let o = Options::from_init(
        &ctx,
        "base_port=6000; gmcast.listen_addr=tcp://10.0.0.5:7000",
    )
    .unwrap();
    assert_eq!(o.base_port(), 7000);
    assert_eq!(o.get("base_port"), Some("7000"));
    assert_eq!(
        o.ist_recv_addr().unwrap().to_string(),
        "tcp://10.0.0.5:7001"
    );

    let v6 = InitContext {
        node_address: "[fd00::5]:4567".into(),
        ..reference_ctx()
    };
    let o = Options::from_init(&v6, "").unwrap();
    assert_eq!(o.base_host(), Some("[fd00::5]"));
    assert_eq!(
        o.ist_recv_addr().unwrap().to_string(),
        "tcp://[fd00::5]:4568"
    );

    // A bare IPv6 wsrep_node_address, as Galera accepts it (galera_sst_rsync_recv_auto).
    let bare = InitContext {
        node_address: "::1".into(),
        ..reference_ctx()
    };
    let o = Options::from_init(&bare, "").unwrap();
    assert_eq!(o.base_host(), Some("[::1]"));
    assert_eq!(o.ist_recv_addr().unwrap().to_string(), "tcp://[::1]:4568");
}

#[test]
fn missing_node_address_and_data_dir_fall_back_like_galera() {
    let o = Options::from_init(&InitContext::default(), "").unwrap();
    assert_eq!(o.base_host(), None);
    assert_eq!(o.ist_recv_addr(), None);
    assert_eq!(o.get("base_dir"), Some("."));
    assert_eq!(o.get("gcache.dir"), Some("."));
    assert_eq!(o.base_port(), 4567);
    assert!(!o.render().contains("base_host"));
    let with_host = Options::from_init(&InitContext::default(), "base_host=db1").unwrap();
    assert_eq!(
        with_host.ist_recv_addr().unwrap().to_string(),
        "tcp://db1:4568"
    );
}

#[test]
fn wildcard_or_malformed_node_address_is_refused() {
    for bad in ["0.0.0.0", "[::]", "::", "0.0.0.0:4567", "host:port"] {
        let ctx = InitContext {
            node_address: bad.into(),
            ..reference_ctx()
        };
        let err = Options::from_init(&ctx, "").unwrap_err();
        assert!(
            matches!(err, OptionError::NodeAddress { .. }),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn evs_timeouts_derive_from_the_inactive_timeout_and_keepalive_when_not_given() {
    let o = Options::from_init(
        &reference_ctx(),
        "evs.inactive_timeout=PT30S; evs.keepalive_period=PT1.5S",
    )
    .unwrap();
    assert_eq!(o.install_timeout(), Duration::from_secs(15));
    assert_eq!(o.get("evs.install_timeout"), Some("PT15S"));
    assert_eq!(o.get("evs.causal_keepalive_period"), Some("PT1.5S"));
}

#[test]
fn startup_relations_name_both_options() {
    let cases = [
        (
            "evs.keepalive_period=PT2S",
            "evs.keepalive_period",
            "evs.suspect_timeout",
        ),
        (
            "evs.inactive_check_period=PT3S",
            "evs.inactive_check_period",
            "evs.suspect_timeout",
        ),
        (
            "evs.inactive_timeout=PT1S",
            "evs.install_timeout",
            "evs.keepalive_period",
        ),
        (
            "evs.install_timeout=PT20S",
            "evs.install_timeout",
            "evs.inactive_timeout",
        ),
        (
            "evs.user_send_window=5",
            "evs.user_send_window",
            "evs.send_window",
        ),
        ("socket.ssl_key=/k.pem", "socket.ssl_key", "socket.ssl_cert"),
        ("socket.ssl=yes", "socket.ssl_key", "socket.ssl_cert"),
    ];
    for (options, key, other) in cases {
        let err = Options::from_init(&reference_ctx(), options).unwrap_err();
        match &err {
            OptionError::Inconsistent {
                key: k, other: o, ..
            } => {
                assert_eq!((*k, *o), (key, other), "{options}");
            }
            _ => panic!("{options}: expected an inconsistency, got {err}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(key) && message.contains(other),
            "{message}"
        );
    }
    // Explicitly disabled SSL needs no files.
    assert!(Options::from_init(&reference_ctx(), "socket.ssl=no; socket.ssl_key=/k.pem").is_ok());
}

#[test]
fn errors_name_the_option_and_what_was_expected() {
    let ctx = reference_ctx();
    let err = Options::from_init(&ctx, "evs.suspekt_timeout=PT5S").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Unknown parameter 'evs.suspekt_timeout' (did you mean 'evs.suspect_timeout'?)"
    );
    let err = Options::from_init(&ctx, "gcache.size=abc").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid value 'abc' for provider option 'gcache.size': expected a size such as 128M \
         (suffixes K, M, G, T)"
    );
    let err = Options::from_init(&ctx, "pc.weight=256").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Value '256' for provider option 'pc.weight' is out of range: expected 0..=255"
    );
    let err = Options::from_init(&ctx, "evs.suspect_timeout=PT0.01S").unwrap_err();
    assert!(
        matches!(
            err,
            OptionError::OutOfRange {
                key: "evs.suspect_timeout",
                ..
            }
        ),
        "{err}"
    );
    let err = Options::from_init(&ctx, "evs.suspect_timeout=5 seconds").unwrap_err();
    assert!(
        err.to_string().contains("expected a duration such as PT5S"),
        "{err}"
    );
    let err = Options::from_init(&ctx, "gmcast.listen_addr=udp://1.2.3.4").unwrap_err();
    assert!(err.to_string().contains("tcp:// or ssl://"), "{err}");
    let err = Options::from_init(&ctx, "pc.weight").unwrap_err();
    assert!(matches!(err, OptionError::Syntax { .. }), "{err}");
    assert!(err.to_string().contains("'pc.weight'"), "{err}");

    let mut o = reference_node();
    let err = o.set("gcache.size=1G").unwrap_err();
    assert_eq!(err, OptionError::NotDynamic { key: "gcache.size" });
    assert_eq!(
        err.to_string(),
        "Provider option 'gcache.size' cannot be changed at run time"
    );
    let err = o.set("gmcasts.segment=1").unwrap_err();
    assert_eq!(
        err,
        OptionError::Unknown {
            key: "gmcasts.segment".into(),
            suggestion: Some("gmcast.segment")
        }
    );
}

#[test]
fn keys_are_case_sensitive_as_in_galera() {
    let err = Options::from_init(&reference_ctx(), "PC.WEIGHT=2").unwrap_err();
    assert_eq!(
        err,
        OptionError::Unknown {
            key: "PC.WEIGHT".into(),
            suggestion: Some("pc.weight")
        }
    );
}

#[test]
fn startup_only_options_accept_their_current_value_at_run_time() {
    let mut o = reference_node();
    assert_eq!(o.set("gcache.size=128M"), Ok(vec![]));
    // Same value, different spelling: Galera would refuse it; the typed value is the same.
    assert_eq!(o.set("gcache.size=134217728"), Ok(vec![]));
    assert_eq!(
        o.set("base_dir = /tmp/g1/data/; gcomm.thread_prio = "),
        Ok(vec![])
    );
    assert_eq!(o.set("evs.view_forget_timeout=PT24H"), Ok(vec![]));
    assert_eq!(
        o.set("evs.view_forget_timeout=PT25H"),
        Err(OptionError::NotDynamic {
            key: "evs.view_forget_timeout"
        })
    );
}

#[test]
fn failed_set_leaves_every_value_unchanged() {
    let bad_strings = [
        "gcs.fc_limit=100; pc.weight=2; gcache.size=1G",
        "gcs.fc_limit=100; pc.weight=2; no.such.key=1",
        "gcs.fc_limit=100; pc.weight=300",
        "gcs.fc_limit=100; pc.weight=2; evs.suspect_timeout=soon",
        "gcs.fc_limit=100; pc.weight=2; evs.user_send_window=9",
        "gcs.fc_limit=100; pc.weight=2; evs.install_timeout=PT1S",
        "gcs.fc_limit=100; pc.bootstrap=YES; junk",
        "gcs.fc_limit=100; =1",
    ];
    for bad in bad_strings {
        let mut o = reference_node();
        o.set("gmcast.isolate=1").unwrap();
        let before = o.clone();
        let rendered = o.render();
        assert!(o.set(bad).is_err(), "{bad}");
        assert_eq!(o, before, "{bad}");
        assert_eq!(o.render(), rendered, "{bad}");
        assert_eq!(o.fc_limit(), 16, "{bad}");
    }
}

#[test]
fn set_reports_changed_settings_once_with_old_and_new_values() {
    let mut o = reference_node();
    let changes = o
        .set("gcs.fc_limit=100; pc.weight=2; gcs.fc_limit=200; evs.suspect_timeout=PT10S; debug=no")
        .unwrap();
    assert_eq!(
        changes,
        vec![
            Change::Set {
                key: "gcs.fc_limit",
                old: Some("16".into()),
                new: "200".into()
            },
            Change::Set {
                key: "pc.weight",
                old: Some("1".into()),
                new: "2".into()
            },
            Change::Set {
                key: "evs.suspect_timeout",
                old: Some("PT5S".into()),
                new: "PT10S".into()
            },
        ]
    );
    assert_eq!(o.fc_limit(), 200);
    // Back and forth within one string: nothing to report.
    assert_eq!(o.set("pc.weight=5; pc.weight=2"), Ok(vec![]));
    // A hidden option gets its first value.
    assert_eq!(
        o.set("gmcast.isolate=1"),
        Ok(vec![Change::Set {
            key: "gmcast.isolate",
            old: None,
            new: "1".into()
        }])
    );
}

#[test]
fn actions_are_reported_and_not_kept() {
    let mut o = reference_node();
    let uuid = "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b";
    let changes = o
        .set(&format!(
            "pc.bootstrap=YES; socket.ssl_reload=1; evs.evict={uuid}; evs.evict=; \
             gmcast.peer_addr=add:tcp://10.0.0.2:4567; gmcast.peer_addr=del:10.0.0.2:4567; \
             dbug=d,foo; signal=bar; pc.bootstrap=no"
        ))
        .unwrap();
    let node: trireme_types::NodeId = uuid.parse().unwrap();
    let peer = |text: &str| Address::parse(text).unwrap();
    assert_eq!(
        changes,
        vec![
            Change::Action(Action::Bootstrap),
            Change::Action(Action::ReloadSsl),
            Change::Action(Action::Evict(node)),
            Change::Action(Action::ClearEvictions),
            Change::Action(Action::AddPeer(peer("tcp://10.0.0.2:4567"))),
            Change::Action(Action::DelPeer(peer("10.0.0.2:4567"))),
            Change::Action(Action::Dbug("d,foo".into())),
            Change::Action(Action::Signal("bar".into())),
        ]
    );
    let rendered = o.render();
    for key in [
        "pc.bootstrap",
        "socket.ssl_reload",
        "evs.evict",
        "gmcast.peer_addr",
        "dbug",
        "signal",
    ] {
        assert!(
            !rendered.contains(key),
            "{key} must not be shown after a run-time action"
        );
    }
    // FLUSH SSL fires every time, even when SSL set `socket.ssl_reload = 1` at startup.
    let mut ssl = Options::from_init(
        &reference_ctx(),
        "socket.ssl_key=/k.pem; socket.ssl_cert=/c.pem",
    )
    .unwrap();
    assert_eq!(
        ssl.set("socket.ssl_reload=1"),
        Ok(vec![Change::Action(Action::ReloadSsl)])
    );
    assert_eq!(
        ssl.set("socket.ssl_reload=1"),
        Ok(vec![Change::Action(Action::ReloadSsl)])
    );
    // Malformed action values are refused like any other.
    assert!(matches!(
        o.set("evs.evict=node-2"),
        Err(OptionError::Malformed {
            key: "evs.evict",
            ..
        })
    ));
    assert!(matches!(
        o.set("pc.bootstrap=please"),
        Err(OptionError::Malformed { .. })
    ));
}

#[test]
fn pc_bootstrap_at_init_is_kept_for_connect() {
    let o = Options::from_init(&reference_ctx(), "pc.bootstrap=1").unwrap();
    assert!(o.pc_bootstrap());
    assert!(o.render().contains("pc.bootstrap = 1; "));
    // Like Galera, identical text is "no change" (a restored options string does not
    // bootstrap again), any other spelling is a request.
    let mut o = o;
    assert_eq!(o.set("pc.bootstrap = 1"), Ok(vec![]));
    assert_eq!(
        o.set("pc.bootstrap=YES"),
        Ok(vec![Change::Action(Action::Bootstrap)])
    );
}

#[test]
fn durations_and_sizes_round_trip_through_render() {
    let mut o = reference_node();
    o.set(
        "evs.suspect_timeout=PT90S; evs.inactive_timeout=P1DT1H; repl.causal_read_timeout=1.25; \
         gcache.page_size=1536K; gcs.fc_limit=2K; evs.delay_margin=PT0.000000001S",
    )
    .unwrap();
    assert_eq!(o.get("evs.suspect_timeout"), Some("PT1M30S"));
    assert_eq!(o.get("evs.inactive_timeout"), Some("P1DT1H"));
    let again = Options::from_init(&reference_ctx(), &o.render()).unwrap();
    assert_eq!(again.render(), o.render());
    assert_eq!(again.suspect_timeout(), Duration::from_secs(90));
    assert_eq!(again.inactive_timeout(), Duration::from_secs(25 * 3600));
    assert_eq!(again.causal_read_timeout(), Duration::from_millis(1250));
    assert_eq!(again.gcache_page_size_bytes(), 1536 << 10);
    assert_eq!(again.fc_limit(), 2048);
}

#[test]
fn shard_setting_accepts_auto_zero_and_one_to_sixty_four() {
    let shards = |s: &str| Options::from_init(&reference_ctx(), &format!("trireme.shards={s}"));
    assert_eq!(shards("auto").unwrap().shards_setting(), None);
    assert_eq!(shards("0").unwrap().shards_setting(), None);
    assert_eq!(shards("0").unwrap().get("trireme.shards"), Some("auto"));
    assert_eq!(shards("64").unwrap().shards_setting(), Some(64));
    assert!(matches!(
        shards("65"),
        Err(OptionError::OutOfRange {
            key: "trireme.shards",
            ..
        })
    ));
    assert!(matches!(shards("-1"), Err(OptionError::OutOfRange { .. })));
    assert!(matches!(shards("many"), Err(OptionError::Malformed { .. })));
    assert!(matches!(
        Options::from_init(&reference_ctx(), "trireme.profile=fast"),
        Err(OptionError::Malformed {
            key: "trireme.profile",
            ..
        })
    ));
    assert!(matches!(
        reference_node().set("trireme.shards=2"),
        Err(OptionError::NotDynamic {
            key: "trireme.shards"
        })
    ));
}

#[test]
fn every_action_option_maps_to_an_action_for_a_sample_value() {
    let samples = [
        ("dbug", "d"),
        ("evs.evict", ""),
        ("gmcast.peer_addr", "add:h:1"),
        ("pc.bootstrap", "yes"),
        ("signal", "s"),
        ("socket.ssl_reload", "1"),
    ];
    let actions: Vec<&str> = REGISTRY
        .iter()
        .filter(|s| s.runtime == Runtime::Action)
        .map(|s| s.key)
        .collect();
    assert_eq!(actions, samples.iter().map(|(k, _)| *k).collect::<Vec<_>>());
    for (key, value) in samples {
        let changes = reference_node().set(&format!("{key}={value}")).unwrap();
        assert!(matches!(changes.as_slice(), [Change::Action(_)]), "{key}");
    }
}

#[test]
fn every_dynamic_option_can_be_changed_at_run_time() {
    // A value that differs from the default and satisfies the run-time relations.
    let value_for = |kind: &Kind, key: &str| -> String {
        match key {
            "evs.install_timeout" => "PT10S".into(),
            "evs.send_window" => "8".into(),
            "evs.user_send_window" => "3".into(),
            _ => match kind {
                // The opposite of the current value, so that it is a change.
                Kind::Bool => match reference_node().get(key).map(|t| kind.parse(t)) {
                    Some(Ok(crate::value::Value::Bool(true))) => "off".into(),
                    _ => "on".into(),
                },
                Kind::Int { min, max } => {
                    let current = reference_node().get(key).map(str::to_string);
                    [(*min + 1).min(*max), *min, *max]
                        .iter()
                        .map(i64::to_string)
                        .find(|c| Some(c) != current.as_ref())
                        .unwrap_or_default()
                }
                Kind::Float { .. } => "0.5".into(),
                Kind::Size { .. } | Kind::SizeOrAuto => "4M".into(),
                Kind::Duration { .. } => "PT2S".into(),
                Kind::Mask => "0x3".into(),
                Kind::Enum(words) => words[words.len() - 1].into(),
                other => panic!("{key}: no sample for {other:?}"),
            },
        }
    };
    for spec in REGISTRY.iter().filter(|s| s.runtime == Runtime::Dynamic) {
        let mut o = reference_node();
        let value = value_for(&spec.kind, spec.key);
        let changes = o
            .set(&format!("{}={value}", spec.key))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(changes.as_slice(), [Change::Set { key, .. }] if *key == spec.key),
            "{}: {changes:?}",
            spec.key
        );
    }
}

#[test]
fn readme_option_table_matches_the_registry() {
    let readme = include_str!("../README.md");
    if !readme.contains(&markdown_table()) {
        // Printed so the fix is a paste: run with --nocapture.
        println!("{}", markdown_table());
    }
    assert!(
        readme.contains(&markdown_table()),
        "config/README.md's option table is stale: paste trireme_config::markdown_table()"
    );
}

/// splitmix64: tiny, seedable, good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = std::env::var("TRIREME_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("TRIREME_SEED={seed}");
    seed
}

/// Strings built from option-shaped pieces and odd characters.
fn random_options_string(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "=",
        ";",
        " ",
        "\\",
        "\t",
        "\n",
        "\u{0}",
        "é",
        "\u{feff}",
        "::",
        "[",
        "]",
        ":",
        ".",
        "-",
        "+",
        "0x",
        "K",
        "M",
        "PT",
        "S",
        "P",
        "T",
        "1",
        "0",
        "99999999999999999999",
        "yes",
        "auto",
        "add:",
        "del:",
        "tcp://",
        "ssl://",
        "pc.bootstrap",
        "gcache.size",
        "evs.suspect_timeout",
        "repl.max_ws_size",
        "gmcast.listen_addr",
        "trireme.pinning",
        "evs.evict",
        "socket.ssl",
        "base_port",
        "pc.weight",
        "trireme.shards",
        "ist.recv_addr",
        "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(24) {
        if rng.below(8) == 0 {
            s.push(char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'));
        } else {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    s
}

#[test]
fn random_strings_never_panic_and_failed_sets_change_nothing() {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut accepted = 0;
    for round in 0..3_000 {
        let text = random_options_string(&mut rng);
        let init = Options::from_init(&reference_ctx(), &text);
        if let Ok(o) = &init {
            accepted += 1;
            let again = Options::from_init(&reference_ctx(), &o.render());
            assert_eq!(
                again.as_ref().map(Options::render),
                Ok(o.render()),
                "seed {seed} round {round}: {text:?}"
            );
        }
        let mut o = reference_node();
        let before = o.clone();
        match o.set(&text) {
            Ok(_) => {
                assert!(
                    mariadb_read_max_ws_size(&o.render()).is_some(),
                    "seed {seed}: {text:?}"
                );
            }
            Err(e) => {
                assert_eq!(o, before, "seed {seed} round {round}: {text:?}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
    // The generator must reach the success paths too, or the test proves little.
    assert!(
        accepted > 30,
        "seed {seed}: only {accepted} strings accepted"
    );
}
