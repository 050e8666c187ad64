//! A real kill -9: a child process (this test binary, re-run on an ignored test) appends until
//! the parent SIGKILLs it at a random moment; the reopened cache must hold, intact and
//! contiguous, every record the child reported, three times over (recover, append, kill).

mod common;

use common::{config, history, payload, seed, Rng, TempDir};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use trireme_gcache::{GCache, RecordKind};
use trireme_types::Seqno;

const CHILD_DIR_ENV: &str = "TRIREME_GCACHE_KILL9_DIR";
const SLICES: u32 = 2;
const RING_BYTES: u64 = 64 * 1024;
const KEEP_UNRELEASED: i64 = 50;

fn payload_len(s: i64) -> usize {
    (s % 500) as usize
}

#[test]
#[ignore = "child process of a_process_killed_mid_write_keeps_every_record_it_reported"]
fn kill9_child_appends_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let cfg = config(Path::new(&dir), SLICES, RING_BYTES);
    let (mut cache, report) = GCache::open(cfg, history(1)).unwrap();
    let start = report.range.map_or(1, |r| r.1 .0 + 1);
    let mut out = std::io::stdout().lock();
    for s in start.. {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, payload_len(s)))
            .unwrap();
        cache.release_upto(Seqno(s - KEEP_UNRELEASED));
        if s % 50 == 0 {
            writeln!(out, "appended {s}").unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn a_process_killed_mid_write_keeps_every_record_it_reported() {
    let mut rng = Rng(seed());
    let dir = TempDir::new("kill9");
    let cfg = config(dir.path(), SLICES, RING_BYTES);
    let mut reported = 0i64;
    for round in 0..3 {
        let target = reported + 500 + rng.below(3000) as i64;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "kill9_child_appends_until_killed",
                "--nocapture",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("appended ") {
                reported = n.parse().unwrap();
                if reported >= target {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL, possibly in the middle of a record
        child.wait().unwrap();
        assert!(
            reported >= target,
            "round {round}: child stopped early at {reported}"
        );

        let (cache, report) = GCache::open(cfg.clone(), history(1)).unwrap();
        let (lo, hi) = cache
            .range()
            .unwrap_or_else(|| panic!("round {round}: nothing recovered"));
        assert!(
            hi.0 >= reported,
            "round {round}: reported {reported}, recovered up to {hi}"
        );
        assert!(
            hi.0 - lo.0 >= KEEP_UNRELEASED,
            "round {round}: only {lo}..{hi} kept"
        );
        assert!(
            report.bad_records <= 1,
            "round {round}: one write was interrupted at most"
        );
        for s in lo.0..=hi.0 {
            let r = cache.get(Seqno(s)).unwrap().unwrap();
            assert_eq!(
                r.payload,
                &payload(s, payload_len(s))[..],
                "round {round} seqno {s}"
            );
        }
        eprintln!("round {round}: killed after {reported}, recovered {lo}..{hi}");
    }
}
