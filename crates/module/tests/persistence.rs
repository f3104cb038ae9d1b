//! Nothing lost across restarts: RDB save + restart, DEBUG RELOAD, AOF rewrite
//! without the RDB preamble, DUMP/RESTORE (and refused corrupt payloads), the
//! C++ module's RDB layout, and the generic key commands.

use auscout_testkit::server as common;

use common::{info_field, wait_persistence_idle, wire, Server};
use rand::{Rng, SeedableRng};
use redis::{cmd, Connection, RedisResult, Value};

type Track = (i64, String, i64);

/// Everything observable about an index: its tracks (id, descr, frames),
/// count, size and `DEBUG DIGEST-VALUE` (which covers every hash and the id counter).
#[derive(Debug, PartialEq)]
struct Snapshot {
    tracks: Vec<Track>,
    count: i64,
    size: i64,
    digest: String,
}

fn snapshot(c: &mut Connection, key: &str) -> Snapshot {
    let mut tracks = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let (next, page): (String, Vec<Track>) = cmd("auscout.list")
            .arg(key)
            .arg(&cursor)
            .arg("COUNT")
            .arg(1000)
            .query(c)
            .expect("list");
        tracks.extend(page);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let digest: Vec<String> = cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query(c)
        .expect("digest");
    Snapshot {
        tracks,
        count: cmd("auscout.count").arg(key).query(c).unwrap(),
        size: cmd("auscout.size").arg(key).query(c).unwrap(),
        digest: digest.into_iter().next().unwrap_or_default(),
    }
}

fn random_hashes(rng: &mut impl Rng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.random()).collect()
}

/// An index with descriptions, a deleted track (so the id counter is ahead
/// of the largest id) and, if `big`, one track longer than an AOF chunk.
fn populate(c: &mut Connection, key: &str, big: bool) -> i64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..20 {
        let h = wire(&random_hashes(&mut rng, 50 + i * 10));
        if i % 2 == 0 {
            let _: i64 = cmd("auscout.addtrack")
                .arg(key)
                .arg(h)
                .arg(format!("song {i}"))
                .query(c)
                .unwrap();
        } else {
            let _: i64 = cmd("auscout.add").arg(key).arg(h).query(c).unwrap();
        }
    }
    if big {
        let h = wire(&random_hashes(&mut rng, 150_000));
        let _: i64 = cmd("auscout.addtrack")
            .arg(key)
            .arg(h)
            .arg("long one")
            .query(c)
            .unwrap();
    }
    let last: i64 = cmd("auscout.add")
        .arg(key)
        .arg(wire(&[1, 2, 3]))
        .query(c)
        .unwrap();
    let _: i64 = cmd("auscout.del").arg(key).arg(last).query(c).unwrap();
    last + 1
}

fn next_id(c: &mut Connection, key: &str) -> i64 {
    let id: i64 = cmd("auscout.add")
        .arg(key)
        .arg(wire(&[42]))
        .query(c)
        .unwrap();
    id
}

#[test]
fn save_and_restart_keeps_everything() {
    let s = Server::start();
    let mut c = s.conn();
    let expected_next = populate(&mut c, "idx", false);
    let before = snapshot(&mut c, "idx");
    let _: () = cmd("SAVE").query(&mut c).unwrap();
    let s = s.restart(&[]);
    let mut c = s.conn();
    assert_eq!(snapshot(&mut c, "idx"), before);
    assert_eq!(
        info_field(&mut c, "auscout", "auscout_tracks").as_deref(),
        Some("20")
    );
    assert_eq!(
        next_id(&mut c, "idx"),
        expected_next,
        "ids are not reused after a restart"
    );
}

#[test]
fn debug_reload_keeps_everything_and_counts_once() {
    let s = Server::start();
    let mut c = s.conn();
    let expected_next = populate(&mut c, "idx", true);
    let before = snapshot(&mut c, "idx");
    let frames = info_field(&mut c, "auscout", "auscout_frames");
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c, "idx"), before);
    assert_eq!(info_field(&mut c, "auscout", "auscout_frames"), frames);
    assert_eq!(
        info_field(&mut c, "auscout", "auscout_indexes").as_deref(),
        Some("1")
    );
    assert_eq!(next_id(&mut c, "idx"), expected_next);
}

#[test]
fn aof_rewrite_without_preamble_replays_everything() {
    let s = Server::builder()
        .arg("--appendonly")
        .arg("yes")
        .arg("--aof-use-rdb-preamble")
        .arg("no")
        .start();
    let mut c = s.conn();
    let expected_next = populate(&mut c, "idx", true);
    let before = snapshot(&mut c, "idx");
    let _: Value = cmd("BGREWRITEAOF").query(&mut c).unwrap();
    wait_persistence_idle(&mut c);
    let log = s.log();
    assert!(
        log.contains("Background AOF rewrite finished successfully"),
        "{log}"
    );
    // The rewritten base file holds our own commands, the long track in chunks.
    let base = std::fs::read_dir(s.dir().join("appendonlydir"))
        .expect("appendonlydir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().contains(".base.aof"))
        .expect("a base AOF file");
    let text = String::from_utf8_lossy(&std::fs::read(base.path()).unwrap()).into_owned();
    assert!(text.contains("auscout.addtrack") && text.contains("auscout.append"));
    assert!(text.contains("auscout.setnextid"));
    assert!(!text.starts_with("REDIS"), "no RDB preamble");

    let s = s.restart(&[]);
    let mut c = s.conn();
    assert_eq!(snapshot(&mut c, "idx"), before);
    assert_eq!(next_id(&mut c, "idx"), expected_next);
}

#[test]
fn aof_without_rewrite_replays_with_the_same_ids() {
    let s = Server::builder()
        .arg("--appendonly")
        .arg("yes")
        .arg("--appendfsync")
        .arg("always")
        .start();
    let mut c = s.conn();
    let expected_next = populate(&mut c, "idx", false);
    let before = snapshot(&mut c, "idx");
    let s = s.restart(&[]);
    let mut c = s.conn();
    assert_eq!(snapshot(&mut c, "idx"), before);
    assert_eq!(next_id(&mut c, "idx"), expected_next);
}

#[test]
fn dump_restore_copy_rename_del_unlink() {
    let s = Server::start();
    let mut c = s.conn();
    populate(&mut c, "idx", false);
    let before = snapshot(&mut c, "idx");

    let payload: Vec<u8> = cmd("DUMP").arg("idx").query(&mut c).unwrap();
    let _: () = cmd("RESTORE")
        .arg("restored")
        .arg(0)
        .arg(&payload)
        .query(&mut c)
        .unwrap();
    assert_eq!(snapshot(&mut c, "restored"), before);

    let copied: i64 = cmd("COPY").arg("idx").arg("copy").query(&mut c).unwrap();
    assert_eq!(copied, 1);
    assert_eq!(snapshot(&mut c, "copy"), before);
    // A deep copy: changing the copy leaves the original alone.
    let _: i64 = cmd("auscout.del").arg("copy").arg(1).query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c, "idx"), before);
    assert_eq!(snapshot(&mut c, "copy").count, before.count - 1);

    let _: () = cmd("RENAME")
        .arg("idx")
        .arg("renamed")
        .query(&mut c)
        .unwrap();
    assert_eq!(snapshot(&mut c, "renamed"), before);
    let n: i64 = cmd("auscout.count").arg("idx").query(&mut c).unwrap();
    assert_eq!(n, 0);

    // MOVE to another db and back, and an expiry, like any key.
    let moved: i64 = cmd("MOVE").arg("renamed").arg(1).query(&mut c).unwrap();
    assert_eq!(moved, 1);
    let _: () = cmd("SELECT").arg(1).query(&mut c).unwrap();
    let _: i64 = cmd("MOVE").arg("renamed").arg(0).query(&mut c).unwrap();
    let _: () = cmd("SELECT").arg(0).query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c, "renamed"), before);
    let _: i64 = cmd("auscout.add")
        .arg("shortlived")
        .arg(wire(&[1, 2]))
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("PEXPIRE")
        .arg("shortlived")
        .arg(20)
        .query(&mut c)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let n: i64 = cmd("auscout.count")
        .arg("shortlived")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0, "expired");

    assert_eq!(
        info_field(&mut c, "auscout", "auscout_indexes").as_deref(),
        Some("3")
    );
    let _: i64 = cmd("DEL").arg("renamed").query(&mut c).unwrap();
    let _: i64 = cmd("UNLINK").arg("copy").query(&mut c).unwrap();
    let _: i64 = cmd("UNLINK").arg("restored").query(&mut c).unwrap();
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 0);
    assert_eq!(
        info_field(&mut c, "auscout", "auscout_indexes").as_deref(),
        Some("0")
    );
    assert_eq!(
        info_field(&mut c, "auscout", "auscout_tracks").as_deref(),
        Some("0")
    );
}

#[test]
fn memory_usage_tracks_real_memory() {
    let s = Server::start();
    let mut c = s.conn();
    let used = |c: &mut Connection| -> i64 {
        info_field(c, "memory", "used_memory")
            .unwrap()
            .parse()
            .unwrap()
    };
    let start = used(&mut c);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..50 {
        let h = wire(&random_hashes(&mut rng, 20_000));
        let _: i64 = cmd("auscout.add").arg("idx").arg(h).query(&mut c).unwrap();
    }
    let grown = used(&mut c) - start;
    let reported: i64 = cmd("MEMORY").arg("USAGE").arg("idx").query(&mut c).unwrap();
    let ratio = reported as f64 / grown as f64;
    eprintln!("MEMORY USAGE {reported} vs used_memory growth {grown}: {ratio:.3}");
    assert!(
        (0.8..=1.2).contains(&ratio),
        "MEMORY USAGE {reported} vs used_memory growth {grown}"
    );
}

// ---- forged and corrupt payloads ------------------------------------------------

/// CRC-64/Jones as Redis computes it for DUMP payloads and RDB files
/// (reflected polynomial 0xad93d23594c935a9, init 0, no final xor).
fn crc64(data: &[u8]) -> u64 {
    const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[test]
fn crc64_matches_redis_test_vector() {
    // The check value from redis/src/crc64.c.
    assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
}

/// RDB length encoding (rdbSaveLen).
fn rdb_len(out: &mut Vec<u8>, v: u64) {
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.push(0x40 | (v >> 8) as u8);
        out.push(v as u8);
    } else if v <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

const RDB_TYPE_MODULE_2: u8 = 7;
const OPCODE_UINT: u64 = 2;
const OPCODE_STRING: u64 = 5;
const OPCODE_EOF: u64 = 0;
const RDB_VERSION: u16 = 10; // Redis 7.0

/// The 64-bit module type id: 9 name chars in base 64, then 10 bits of encver.
fn module_type_id(name: &str, encver: u64) -> u64 {
    const CSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = 0u64;
    for ch in name.bytes() {
        let p = CSET
            .iter()
            .position(|&c| c == ch)
            .expect("valid type name char") as u64;
        id = (id << 6) | p;
    }
    (id << 10) | encver
}

/// Module values as `RedisModule_Save*` writes them.
enum Op {
    U(u64),
    S(i64),
    Str(Vec<u8>),
}

/// The serialized value (type byte, module id, opcodes, EOF) without footer.
fn module_value(encver: u64, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![RDB_TYPE_MODULE_2];
    rdb_len(&mut out, module_type_id("AuScoutDS", encver));
    for op in ops {
        match op {
            Op::U(v) => {
                rdb_len(&mut out, OPCODE_UINT);
                rdb_len(&mut out, *v);
            }
            Op::S(v) => {
                // RedisModule_SaveSigned stores the two's complement as UINT.
                rdb_len(&mut out, OPCODE_UINT);
                rdb_len(&mut out, *v as u64);
            }
            Op::Str(b) => {
                rdb_len(&mut out, OPCODE_STRING);
                rdb_len(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
    rdb_len(&mut out, OPCODE_EOF);
    out
}

/// A `RESTORE` payload: value, RDB version (LE), CRC64 (LE).
fn dump_payload(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// The layout of the C++ module (encver 0): per track id, frame count, then
/// (hash, position) pairs; a run of equal hashes was stored once.
fn legacy_ops(tracks: &[(i64, Vec<(u32, i64)>)]) -> Vec<Op> {
    let mut ops = vec![Op::U(tracks.len() as u64)];
    for (id, frames) in tracks {
        ops.push(Op::S(*id));
        ops.push(Op::U(frames.len() as u64));
        for &(h, p) in frames {
            ops.push(Op::U(u64::from(h)));
            ops.push(Op::S(p));
        }
    }
    ops
}

fn legacy_tracks() -> Vec<(i64, Vec<(u32, i64)>)> {
    let long: Vec<(u32, i64)> = (0..300).map(|i| (1000 + i as u32, i as i64)).collect();
    vec![
        // A large C++ id, and a run of 7s stored once (frames 1..=3).
        (
            7_311_234_567_890_123_456,
            vec![(5, 0), (7, 1), (9, 4), (11, 5)],
        ),
        (42, long),
        // A negative id (the C++ ids wrap): loaded under a fresh id.
        (-1_234_567, vec![(1, 0), (2, 1)]),
    ]
}

#[test]
fn restore_of_a_cpp_module_payload_loads_its_tracks() {
    let s = Server::start();
    let mut c = s.conn();
    let payload = dump_payload(module_value(0, &legacy_ops(&legacy_tracks())));
    let _: () = cmd("RESTORE")
        .arg("old")
        .arg(0)
        .arg(&payload)
        .query(&mut c)
        .unwrap();
    let snap = snapshot(&mut c, "old");
    assert_eq!(snap.count, 3);
    // 6 frames (gap rebuilt) + 300 + 2
    assert_eq!(snap.size, 308);
    let ids: Vec<i64> = snap.tracks.iter().map(|t| t.0).collect();
    assert_eq!(
        ids,
        vec![42, 7_311_234_567_890_123_456, 7_311_234_567_890_123_457]
    );
    let frames: Vec<i64> = snap.tracks.iter().map(|t| t.2).collect();
    assert_eq!(frames, vec![300, 6, 2]);
    // Saved again in the current encoding, it comes back identical.
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c, "old"), snap);
}

/// A whole RDB file as the C++ module's server would have written it.
fn legacy_rdb_file(
    key: &str,
    tracks: &[(i64, Vec<(u32, i64)>)],
    side: &[(String, String)],
) -> Vec<u8> {
    let mut out = format!("REDIS{RDB_VERSION:04}").into_bytes();
    out.push(0xFE); // SELECTDB
    rdb_len(&mut out, 0);
    let value = module_value(0, &legacy_ops(tracks));
    out.push(value[0]);
    rdb_len(&mut out, key.len() as u64);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&value[1..]);
    // Side keys: `<key>:<id>` hashes with the description (RDB_TYPE_HASH = 4).
    for (name, descr) in side {
        out.push(4);
        rdb_len(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        rdb_len(&mut out, 1);
        for s in ["descr", descr.as_str()] {
            rdb_len(&mut out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
    out.push(0xFF); // EOF
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn a_cpp_module_rdb_file_loads_and_its_descriptions_import() {
    let tracks = legacy_tracks();
    let side = vec![
        ("old:42".to_owned(), "track forty-two".to_owned()),
        ("old:7311234567890123456".to_owned(), "big id".to_owned()),
    ];
    let s = Server::builder()
        .file("dump.rdb", legacy_rdb_file("old", &tracks, &side))
        .start();
    let mut c = s.conn();
    assert_eq!(snapshot(&mut c, "old").count, 3, "{}", s.log());
    let n: i64 = cmd("auscout.importdescr").arg("old").query(&mut c).unwrap();
    assert_eq!(n, 2);
    let snap = snapshot(&mut c, "old");
    assert_eq!(snap.tracks[0], (42, "track forty-two".to_owned(), 300));
    assert_eq!(
        snap.tracks[1],
        (7_311_234_567_890_123_456, "big id".to_owned(), 6)
    );
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 1, "side keys are gone");
}

fn restore(c: &mut Connection, key: &str, payload: &[u8]) -> RedisResult<Value> {
    cmd("RESTORE")
        .arg(key)
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query(c)
}

#[test]
fn corrupt_restore_payloads_are_refused_and_the_server_stays_up() {
    let mut s = Server::start();
    let mut c = s.conn();
    populate(&mut c, "idx", false);
    let good: Vec<u8> = cmd("DUMP").arg("idx").query(&mut c).unwrap();
    let body = &good[..good.len() - 10];

    // Truncated module data with a valid checksum: a short read, refused.
    // (A cut within the last 10 bytes can go unnoticed: the reader then
    // consumes the payload's own footer as data.)
    for cut in [3, 12, body.len() / 3, body.len() / 2, body.len() - 20] {
        let r = restore(&mut c, "bad", &dump_payload(body[..cut].to_vec()));
        assert!(r.is_err(), "truncated at {cut} accepted");
    }
    // A wrong checksum.
    let mut wrong = good.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 0xff;
    assert!(restore(&mut c, "bad", &wrong).is_err());
    // Unknown encoding version.
    assert!(restore(&mut c, "bad", &dump_payload(module_value(5, &[Op::U(0)]))).is_err());
    // Forged counts far beyond the data: refused, no huge allocation.
    let huge = legacy_ops(&[]);
    let mut ops = vec![Op::U(u64::MAX)];
    ops.extend(huge.into_iter().skip(1));
    assert!(restore(&mut c, "bad", &dump_payload(module_value(0, &ops))).is_err());
    let ops = vec![Op::U(1), Op::S(5), Op::U(1 << 40), Op::U(1), Op::S(0)];
    assert!(restore(&mut c, "bad", &dump_payload(module_value(0, &ops))).is_err());
    // Compact layout: a hash buffer that is not a multiple of 4 bytes, a bad id, a duplicate id.
    let compact = |tracks: &[(i64, &[u8])]| {
        let mut ops = vec![Op::U(100), Op::U(tracks.len() as u64)];
        for (id, h) in tracks {
            ops.push(Op::S(*id));
            ops.push(Op::Str(b"d".to_vec()));
            ops.push(Op::Str(h.to_vec()));
        }
        dump_payload(module_value(1, &ops))
    };
    assert!(restore(&mut c, "bad", &compact(&[(1, &[1, 2, 3])])).is_err());
    assert!(restore(&mut c, "bad", &compact(&[(0, &[1, 2, 3, 4])])).is_err());
    assert!(restore(
        &mut c,
        "bad",
        &compact(&[(1, &[0, 0, 0, 1]), (1, &[0, 0, 0, 2])])
    )
    .is_err());
    assert!(restore(
        &mut c,
        "ok",
        &compact(&[(1, &[0, 0, 0, 1]), (2, &[0, 0, 0, 2])])
    )
    .is_ok());

    // Random byte flips with a fixed-up checksum: whatever loads must be usable.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..300 {
        let mut b = body.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
        if restore(&mut c, "fuzz", &dump_payload(b)).is_ok() {
            let _: RedisResult<Value> = cmd("auscout.list").arg("fuzz").query(&mut c);
            let _: RedisResult<Value> = cmd("DEBUG").arg("DIGEST-VALUE").arg("fuzz").query(&mut c);
        }
    }
    let exists: i64 = cmd("EXISTS").arg("bad").query(&mut c).unwrap();
    assert_eq!(exists, 0);
    assert!(s.is_alive());
    assert_eq!(snapshot(&mut c, "idx").count, 20);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert!(s.is_alive());
}
