//! The module's huge-page keeper: once writes stop, the index's memory is
//! collapsed onto transparent huge pages (where the host supports it), and
//! nothing a client can see changes — answers, `MEMORY USAGE`,
//! `used_memory`.

use std::time::{Duration, Instant};

use auscout_core::hugepages;
use auscout_testkit::server::{config_get, config_set, info_field, wire, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{cmd, Connection, Value};

/// Resident memory of the server on huge pages, in bytes.
fn huge_resident(c: &mut Connection) -> u64 {
    let pid = info_field(c, "server", "process_id").expect("process_id");
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps_rollup");
    text.lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("AnonHugePages")
        * 1024
}

fn used_memory(c: &mut Connection) -> i64 {
    info_field(c, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory")
}

fn memory_usage(c: &mut Connection, key: &str) -> i64 {
    cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query(c)
        .expect("MEMORY USAGE")
}

#[test]
fn an_index_goes_onto_huge_pages_and_nothing_else_changes() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(config_get(&mut c, "auscout.hugepages"), "yes");
    let mut rng = StdRng::seed_from_u64(15);
    let tracks: Vec<Vec<u32>> = (0..120)
        .map(|_| (0..20_000).map(|_| rng.random()).collect())
        .collect();
    for t in &tracks {
        let _: i64 = cmd("auscout.add")
            .arg("idx")
            .arg(wire(t))
            .query(&mut c)
            .unwrap();
    }
    let query = &tracks[77][5_000..6_000];
    let lookup = |c: &mut Connection| -> Value {
        cmd("auscout.lookup")
            .arg("idx")
            .arg(wire(query))
            .arg(wire(&[0; 1_000]))
            .query(c)
            .expect("auscout.lookup")
    };
    let (usage, used, answer) = (
        memory_usage(&mut c, "idx"),
        used_memory(&mut c),
        lookup(&mut c),
    );

    // A host that lets the module collapse memory has most of the index on
    // huge pages within seconds of the last write.
    let supported = hugepages::huge_page_size().is_some_and(hugepages::collapse_supported);
    let deadline = Instant::now() + Duration::from_secs(20);
    let huge = loop {
        let huge = huge_resident(&mut c);
        if !supported || 4 * huge >= 3 * usage as u64 || Instant::now() > deadline {
            break huge;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if supported {
        assert!(
            4 * huge >= 3 * usage as u64,
            "{huge} B on huge pages, index {usage} B"
        );
    }
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(memory_usage(&mut c, "idx"), usage);
    let drift = used_memory(&mut c) - used;
    assert!(drift.abs() < 64 << 10, "used_memory moved by {drift} B");
    assert_eq!(lookup(&mut c), answer);

    // Turned off and on again: still settable, still the same answers.
    config_set(&mut c, "auscout.hugepages", "no").unwrap();
    let _: i64 = cmd("auscout.add")
        .arg("idx")
        .arg(wire(&tracks[3]))
        .query(&mut c)
        .unwrap();
    assert_eq!(config_get(&mut c, "auscout.hugepages"), "no");
    config_set(&mut c, "auscout.hugepages", "yes").unwrap();
    assert_eq!(lookup(&mut c), answer);
}
