//! Every `auscout.*` command against a real redis-server: replies, key
//! handling, Redis conventions, and every bad input (error reply, server up,
//! nothing changed).

use auscout_testkit::server as common;

use common::{config_get, config_set, info_field, wire, Server};
use redis::{cmd, Connection, RedisResult, Value};

fn add(c: &mut Connection, key: &str, hashes: &[u32]) -> i64 {
    cmd("auscout.add")
        .arg(key)
        .arg(wire(hashes))
        .query(c)
        .expect("auscout.add")
}

fn addtrack(c: &mut Connection, key: &str, hashes: &[u32], descr: &str) -> i64 {
    cmd("auscout.addtrack")
        .arg(key)
        .arg(wire(hashes))
        .arg(descr)
        .query(c)
        .expect("auscout.addtrack")
}

fn count(c: &mut Connection, key: &str) -> i64 {
    cmd("auscout.count")
        .arg(key)
        .query(c)
        .expect("auscout.count")
}

fn size(c: &mut Connection, key: &str) -> i64 {
    cmd("auscout.size").arg(key).query(c).expect("auscout.size")
}

/// The error text of a command that must fail.
fn err_of(r: RedisResult<Value>) -> String {
    match r {
        Ok(v) => panic!("expected an error reply, got {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("").to_owned();
            let detail = e.detail().unwrap_or("").to_owned();
            format!("{code} {detail}")
        }
    }
}

fn assert_err(r: RedisResult<Value>, code: &str) -> String {
    let e = err_of(r);
    assert!(
        e.starts_with(code),
        "error '{e}' should start with '{code}'"
    );
    e
}

#[test]
fn add_assigns_increasing_ids_and_counts_frames() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(count(&mut c, "idx"), 0);
    assert_eq!(size(&mut c, "idx"), 0);
    assert_eq!(add(&mut c, "idx", &[1, 2, 3]), 1);
    assert_eq!(addtrack(&mut c, "idx", &[4, 5], "second"), 2);
    assert_eq!(count(&mut c, "idx"), 2);
    assert_eq!(size(&mut c, "idx"), 5);
    let t: String = cmd("TYPE").arg("idx").query(&mut c).unwrap();
    assert_eq!(t, "AuScoutDS");
}

#[test]
fn explicit_ids_are_kept_and_duplicates_refused() {
    let s = Server::start();
    let mut c = s.conn();
    let id: i64 = cmd("auscout.add")
        .arg("idx")
        .arg(wire(&[1]))
        .arg(10)
        .query(&mut c)
        .unwrap();
    assert_eq!(id, 10);
    let id: i64 = cmd("auscout.addtrack")
        .arg("idx")
        .arg(wire(&[2]))
        .arg("d")
        .arg(5)
        .query(&mut c)
        .unwrap();
    assert_eq!(id, 5);
    // The counter continues after the largest id.
    assert_eq!(add(&mut c, "idx", &[3]), 11);
    assert_err(
        cmd("auscout.add")
            .arg("idx")
            .arg(wire(&[9, 9]))
            .arg(10)
            .query(&mut c),
        "ERR",
    );
    assert_eq!(count(&mut c, "idx"), 3);
    assert_eq!(size(&mut c, "idx"), 3);
}

#[test]
fn ids_are_not_reused_after_delete() {
    let s = Server::start();
    let mut c = s.conn();
    add(&mut c, "idx", &[1]);
    let second = add(&mut c, "idx", &[2, 2]);
    let removed: i64 = cmd("auscout.del")
        .arg("idx")
        .arg(second)
        .query(&mut c)
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(add(&mut c, "idx", &[3]), second + 1);
}

#[test]
fn del_returns_frames_and_last_track_deletes_the_key() {
    let s = Server::start();
    let mut c = s.conn();
    let a = add(&mut c, "idx", &[1, 2, 3, 4]);
    let b = add(&mut c, "idx", &[5, 6]);
    let n: i64 = cmd("auscout.del").arg("idx").arg(a).query(&mut c).unwrap();
    assert_eq!(n, 4);
    assert_eq!((count(&mut c, "idx"), size(&mut c, "idx")), (1, 2));
    assert_err(cmd("auscout.del").arg("idx").arg(a).query(&mut c), "ERR");
    let n: i64 = cmd("auscout.del").arg("idx").arg(b).query(&mut c).unwrap();
    assert_eq!(n, 2);
    let exists: i64 = cmd("EXISTS").arg("idx").query(&mut c).unwrap();
    assert_eq!(exists, 0);
    assert_err(cmd("auscout.del").arg("idx").arg(b).query(&mut c), "ERR");
}

#[test]
fn delkey_removes_the_index() {
    let s = Server::start();
    let mut c = s.conn();
    add(&mut c, "idx", &[1, 2]);
    let ok: String = cmd("auscout.delkey").arg("idx").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(count(&mut c, "idx"), 0);
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 0);
    assert_err(cmd("auscout.delkey").arg("idx").query(&mut c), "ERR");
}

#[test]
fn lookup_reply_is_an_array_and_empty_when_nothing_matches() {
    let s = Server::start();
    let mut c = s.conn();
    add(&mut c, "idx", &[1, 2, 3]);
    let reply: Vec<Value> = cmd("auscout.lookup")
        .arg("idx")
        .arg(wire(&[0xdead_beef; 50]))
        .arg(wire(&[0; 50]))
        .arg(0.9)
        .query(&mut c)
        .unwrap();
    assert!(reply.is_empty(), "{reply:?}");
}

#[test]
fn list_pages_through_all_tracks() {
    let s = Server::start();
    let mut c = s.conn();
    for i in 0..25u32 {
        addtrack(
            &mut c,
            "idx",
            &vec![i; (i + 1) as usize],
            &format!("track {i}"),
        );
    }
    let mut cursor = "0".to_owned();
    let mut seen = Vec::new();
    loop {
        let (next, page): (String, Vec<(i64, String, i64)>) = cmd("auscout.list")
            .arg("idx")
            .arg(&cursor)
            .arg("COUNT")
            .arg(10)
            .query(&mut c)
            .unwrap();
        assert!(page.len() <= 10);
        seen.extend(page);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 25);
    for (i, (id, descr, frames)) in seen.iter().enumerate() {
        assert_eq!(*id, i as i64 + 1);
        assert_eq!(descr, &format!("track {i}"));
        assert_eq!(*frames, i as i64 + 1);
    }
    // Without arguments: the first page of the default size.
    let (next, page): (String, Vec<(i64, String, i64)>) =
        cmd("auscout.list").arg("idx").query(&mut c).unwrap();
    assert_eq!((next.as_str(), page.len()), ("0", 25));
}

#[test]
fn hashes_reads_a_track_back_in_pages() {
    let s = Server::start();
    let mut c = s.conn();
    let track: Vec<u32> = (0..1000u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    add(&mut c, "idx", &[7, 7]);
    let id = addtrack(&mut c, "idx", &track, "song");
    let read = |c: &mut Connection, args: &[u64]| -> (i64, Vec<u32>) {
        let mut call = cmd("auscout.hashes");
        call.arg("idx").arg(id);
        for a in args {
            call.arg(*a);
        }
        let (frames, bytes): (i64, Vec<u8>) = call.query(c).expect("auscout.hashes");
        let hashes = bytes
            .chunks(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (frames, hashes)
    };
    assert_eq!(read(&mut c, &[]), (1000, track.clone()));
    assert_eq!(read(&mut c, &[990]), (1000, track[990..].to_vec()));
    assert_eq!(read(&mut c, &[100, 5]), (1000, track[100..105].to_vec()));
    // Past the end: the frame count and nothing else.
    assert_eq!(read(&mut c, &[5000, 10]), (1000, Vec::new()));
    assert_eq!(read(&mut c, &[10, 0]), (1000, Vec::new()));
    assert_err(
        cmd("auscout.hashes").arg("idx").arg(99).query(&mut c),
        "ERR",
    );
    assert_err(
        cmd("auscout.hashes").arg("nokey").arg(1).query(&mut c),
        "ERR",
    );
    assert_err(cmd("auscout.hashes").arg("idx").arg(0).query(&mut c), "ERR");
    assert_err(
        cmd("auscout.hashes")
            .arg("idx")
            .arg(id)
            .arg(-1)
            .query(&mut c),
        "ERR",
    );
    assert_err(
        cmd("auscout.hashes")
            .arg("idx")
            .arg(id)
            .arg(0)
            .arg("x")
            .query(&mut c),
        "ERR",
    );
    assert_err(cmd("auscout.hashes").arg("idx").query(&mut c), "ERR");
}

#[test]
fn index_reports_stats() {
    let s = Server::start();
    let mut c = s.conn();
    add(&mut c, "idx", &[1, 2, 3, 3]);
    add(&mut c, "idx", &[3, 4]);
    let flat: Vec<Value> = cmd("auscout.index").arg("idx").query(&mut c).unwrap();
    let mut stats = std::collections::HashMap::new();
    for pair in flat.chunks(2) {
        let name: String = redis::from_redis_value(&pair[0]).unwrap();
        let v: i64 = redis::from_redis_value(&pair[1]).unwrap();
        stats.insert(name, v);
    }
    assert_eq!(stats["tracks"], 2);
    assert_eq!(stats["frames"], 6);
    assert_eq!(stats["distinct_hashes"], 4);
    assert_eq!(stats["next_id"], 3);
    assert!(stats["bytes"] > 0);
    assert!(stats["longest_posting"] >= 2);
}

#[test]
fn append_extends_a_track() {
    let s = Server::start();
    let mut c = s.conn();
    let id = add(&mut c, "idx", &[1, 2]);
    let n: i64 = cmd("auscout.append")
        .arg("idx")
        .arg(id)
        .arg(wire(&[3, 4, 5]))
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(size(&mut c, "idx"), 5);
    assert_err(
        cmd("auscout.append")
            .arg("idx")
            .arg(id + 1)
            .arg(wire(&[3]))
            .query(&mut c),
        "ERR",
    );
    assert_err(
        cmd("auscout.append")
            .arg("nokey")
            .arg(1)
            .arg(wire(&[3]))
            .query(&mut c),
        "ERR",
    );
    assert_err(
        cmd("auscout.append")
            .arg("idx")
            .arg(id)
            .arg(&b"abc"[..])
            .query(&mut c),
        "ERR",
    );
    assert_eq!(size(&mut c, "idx"), 5);
}

#[test]
fn setnextid_only_raises_the_counter() {
    let s = Server::start();
    let mut c = s.conn();
    add(&mut c, "idx", &[1]);
    let ok: String = cmd("auscout.setnextid")
        .arg("idx")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let _: String = cmd("auscout.setnextid")
        .arg("idx")
        .arg(50)
        .query(&mut c)
        .unwrap();
    assert_eq!(add(&mut c, "idx", &[2]), 100);
    assert_err(
        cmd("auscout.setnextid").arg("nokey").arg(5).query(&mut c),
        "ERR",
    );
    assert_err(
        cmd("auscout.setnextid").arg("idx").arg("x").query(&mut c),
        "ERR",
    );
}

#[test]
fn importdescr_pulls_side_keys_into_the_index() {
    let s = Server::start();
    let mut c = s.conn();
    let a = add(&mut c, "idx", &[1]);
    let b = add(&mut c, "idx", &[2]);
    let _: i64 = cmd("HSET")
        .arg(format!("idx:{a}"))
        .arg("descr")
        .arg("first song")
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("HSET")
        .arg(format!("idx:{b}"))
        .arg("other")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("INCRBY")
        .arg("idx:counter")
        .arg(2)
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SET").arg("unrelated").arg("1").query(&mut c).unwrap();
    let n: i64 = cmd("auscout.importdescr").arg("idx").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let keys: Vec<String> = cmd("KEYS").arg("idx:*").query(&mut c).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    let (_, page): (String, Vec<(i64, String, i64)>) =
        cmd("auscout.list").arg("idx").query(&mut c).unwrap();
    assert_eq!(
        page,
        vec![(a, "first song".to_owned(), 1), (b, String::new(), 1)]
    );
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 2);
    assert_err(cmd("auscout.importdescr").arg("nokey").query(&mut c), "ERR");
}

#[test]
fn wrong_type_is_refused_everywhere() {
    let s = Server::start();
    let mut c = s.conn();
    let _: () = cmd("SET").arg("str").arg("v").query(&mut c).unwrap();
    let h = wire(&[1, 2]);
    let calls: Vec<redis::Cmd> = vec![
        cmd("auscout.add").arg("str").arg(&h).clone(),
        cmd("auscout.addtrack").arg("str").arg(&h).arg("d").clone(),
        cmd("auscout.append").arg("str").arg(1).arg(&h).clone(),
        cmd("auscout.setnextid").arg("str").arg(5).clone(),
        cmd("auscout.del").arg("str").arg(1).clone(),
        cmd("auscout.lookup")
            .arg("str")
            .arg(&h)
            .arg(wire(&[0, 0]))
            .clone(),
        cmd("auscout.hashes").arg("str").arg(1).clone(),
        cmd("auscout.count").arg("str").clone(),
        cmd("auscout.size").arg("str").clone(),
        cmd("auscout.delkey").arg("str").clone(),
        cmd("auscout.list").arg("str").clone(),
        cmd("auscout.index").arg("str").clone(),
        cmd("auscout.importdescr").arg("str").clone(),
    ];
    for call in calls {
        let e = err_of(call.query(&mut c));
        assert_eq!(
            e,
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
    }
    let v: String = cmd("GET").arg("str").query(&mut c).unwrap();
    assert_eq!(v, "v");
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    add(&mut c, "idx", &[1, 2, 3]);
    let h = wire(&[1, 2]);
    let t = wire(&[0, 0]);
    let bad: Vec<redis::Cmd> = vec![
        // hash arrays: empty, not a multiple of 4
        cmd("auscout.add").arg("idx").arg(&b""[..]).clone(),
        cmd("auscout.add").arg("idx").arg(&b"12345"[..]).clone(),
        cmd("auscout.addtrack")
            .arg("idx")
            .arg(&b"123"[..])
            .arg("d")
            .clone(),
        cmd("auscout.add").arg("new").arg(&b""[..]).clone(),
        // ids: not an integer, <= 0, too large
        cmd("auscout.add").arg("idx").arg(&h).arg("abc").clone(),
        cmd("auscout.add").arg("idx").arg(&h).arg("1.5").clone(),
        cmd("auscout.add").arg("idx").arg(&h).arg(0).clone(),
        cmd("auscout.add").arg("idx").arg(&h).arg(-3).clone(),
        cmd("auscout.add")
            .arg("idx")
            .arg(&h)
            .arg("9223372036854775807")
            .clone(),
        cmd("auscout.add")
            .arg("idx")
            .arg(&h)
            .arg("99999999999999999999")
            .clone(),
        cmd("auscout.addtrack")
            .arg("idx")
            .arg(&h)
            .arg("d")
            .arg("x")
            .clone(),
        cmd("auscout.del").arg("idx").arg("x").clone(),
        cmd("auscout.del").arg("idx").arg(0).clone(),
        cmd("auscout.del").arg("idx").arg(77).clone(),
        // lookups: length mismatch, toggles over the cap, thresholds
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(wire(&[0]))
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            // 9 bits, over the default cap of 8
            .arg(wire(&[0, 0x1ff]))
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&b""[..])
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&b"12"[..])
            .arg(&t)
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg("abc")
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg("nan")
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg("1.5")
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg("-0.1")
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg("inf")
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg(0.5)
            .arg("LIMIT")
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg(0.5)
            .arg("LIMIT")
            .arg(0)
            .clone(),
        cmd("auscout.lookup")
            .arg("idx")
            .arg(&h)
            .arg(&t)
            .arg(0.5)
            .arg("BOGUS")
            .clone(),
        // missing keys
        cmd("auscout.lookup").arg("nokey").arg(&h).arg(&t).clone(),
        cmd("auscout.del").arg("nokey").arg(1).clone(),
        cmd("auscout.delkey").arg("nokey").clone(),
        cmd("auscout.list").arg("nokey").clone(),
        cmd("auscout.index").arg("nokey").clone(),
        // list options
        cmd("auscout.list").arg("idx").arg("x").clone(),
        cmd("auscout.list")
            .arg("idx")
            .arg(0)
            .arg("COUNT")
            .arg(0)
            .clone(),
        cmd("auscout.list").arg("idx").arg(0).arg("COUNT").clone(),
    ];
    for call in bad {
        let e = err_of(call.query(&mut c));
        assert!(
            e.starts_with("ERR "),
            "{:?} gave '{e}'",
            String::from_utf8_lossy(&call.get_packed_command())
        );
    }
    // missing arguments (Redis' own arity error)
    let arity: Vec<redis::Cmd> = vec![
        cmd("auscout.add").arg("idx").clone(),
        cmd("auscout.addtrack").arg("idx").arg(&h).clone(),
        cmd("auscout.del").arg("idx").clone(),
        cmd("auscout.lookup").arg("idx").arg(&h).clone(),
        cmd("auscout.count").clone(),
        cmd("auscout.size").clone(),
        cmd("auscout.delkey").clone(),
        cmd("auscout.index").clone(),
        cmd("auscout.list").clone(),
        cmd("auscout.add").arg("idx").arg(&h).arg(1).arg(2).clone(),
    ];
    for call in arity {
        let e = err_of(call.query(&mut c));
        assert!(e.starts_with("ERR wrong number of arguments"), "{e}");
    }
    assert_eq!((count(&mut c, "idx"), size(&mut c, "idx")), (1, 3));
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 1, "no key created by a failed command");
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn configs_are_visible_settable_and_validated() {
    let s = Server::start();
    let mut c = s.conn();
    let cfg: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("auscout.*")
        .query(&mut c)
        .unwrap();
    let map: std::collections::HashMap<_, _> = cfg
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(map["auscout.default-threshold"], "0.25");
    assert_eq!(map["auscout.max-toggle-bits"], "8");
    assert_eq!(map["auscout.threads"], "2");
    config_set(&mut c, "auscout.default-threshold", "0.5").unwrap();
    config_set(&mut c, "auscout.max-toggle-bits", "4").unwrap();
    for bad in ["abc", "nan", "1.5", "-1"] {
        let r = config_set(&mut c, "auscout.default-threshold", bad);
        assert!(r.is_err(), "{bad} accepted");
    }
    let r = config_set(&mut c, "auscout.max-toggle-bits", "64");
    assert!(r.is_err());
    for bad in ["0", "9", "-1"] {
        let r = config_set(&mut c, "auscout.threads", bad);
        assert!(r.is_err(), "threads {bad} accepted");
    }
    assert_eq!(config_get(&mut c, "auscout.default-threshold"), "0.5");
    // The lowered toggle cap applies to lookups.
    add(&mut c, "idx", &[1, 2]);
    let e = err_of(
        cmd("auscout.lookup")
            .arg("idx")
            .arg(wire(&[1, 2]))
            .arg(wire(&[0x1f, 0]))
            .query(&mut c),
    );
    assert!(e.starts_with("ERR "), "{e}");
}

#[test]
fn configs_can_be_set_as_module_arguments() {
    let s = Server::builder()
        .module_arg("default-threshold")
        .module_arg("0.4")
        .module_arg("max-toggle-bits")
        .module_arg("6")
        .start();
    let mut c = s.conn();
    assert_eq!(config_get(&mut c, "auscout.default-threshold"), "0.4");
    assert_eq!(config_get(&mut c, "auscout.max-toggle-bits"), "6");
}

#[test]
fn info_section_counts_indexes_tracks_frames_and_lookups() {
    let s = Server::start();
    let mut c = s.conn();
    add(&mut c, "a", &[1, 2, 3]);
    add(&mut c, "a", &[4]);
    add(&mut c, "b", &[5, 6]);
    // Big enough to be freed on the background thread: INFO must not lag.
    let big: Vec<u32> = (0..70_000).collect();
    add(&mut c, "big", &big);
    let _: i64 = cmd("DEL").arg("big").query(&mut c).unwrap();
    let f = |c: &mut Connection, name: &str| info_field(c, "auscout", name).unwrap_or_default();
    assert_eq!(f(&mut c, "auscout_indexes"), "2");
    assert_eq!(f(&mut c, "auscout_tracks"), "3");
    assert_eq!(f(&mut c, "auscout_frames"), "6");
    let _: Value = cmd("auscout.lookup")
        .arg("a")
        .arg(wire(&[1]))
        .arg(wire(&[0]))
        .query(&mut c)
        .unwrap();
    assert_eq!(f(&mut c, "auscout_lookups"), "1");
    let _: i64 = cmd("auscout.del").arg("a").arg(1).query(&mut c).unwrap();
    let _: i64 = cmd("DEL").arg("b").query(&mut c).unwrap();
    assert_eq!(f(&mut c, "auscout_indexes"), "1");
    assert_eq!(f(&mut c, "auscout_tracks"), "1");
    assert_eq!(f(&mut c, "auscout_frames"), "1");
    let _: () = cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(f(&mut c, "auscout_indexes"), "0");
    assert_eq!(f(&mut c, "auscout_frames"), "0");
}

#[test]
fn writes_send_keyspace_notifications() {
    let s = Server::start();
    let mut c = s.conn();
    config_set(&mut c, "notify-keyspace-events", "KEA").unwrap();
    let mut sub = s.conn();
    let mut pubsub = sub.as_pubsub();
    pubsub.psubscribe("__keyspace@0__:idx").unwrap();
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let id = add(&mut c, "idx", &[1]);
    let _: i64 = cmd("auscout.del").arg("idx").arg(id).query(&mut c).unwrap();
    let id = addtrack(&mut c, "idx", &[1], "d");
    let _: i64 = cmd("auscout.append")
        .arg("idx")
        .arg(id)
        .arg(wire(&[2]))
        .query(&mut c)
        .unwrap();
    let _: () = cmd("auscout.setnextid")
        .arg("idx")
        .arg(50)
        .query(&mut c)
        .unwrap();
    let _: () = cmd("auscout.delkey").arg("idx").query(&mut c).unwrap();
    let expected = [
        "auscout.add",
        "auscout.del",
        "del",
        "auscout.addtrack",
        "auscout.append",
        "auscout.setnextid",
        "del",
    ];
    let mut events = Vec::new();
    for _ in 0..expected.len() {
        let msg = pubsub.get_message().unwrap();
        events.push(msg.get_payload::<String>().unwrap());
    }
    assert_eq!(events, expected);
}

#[test]
fn commands_declare_keys_and_flags() {
    let s = Server::start();
    let mut c = s.conn();
    let info: Vec<Value> = cmd("COMMAND")
        .arg("INFO")
        .arg("auscout.add")
        .arg("auscout.lookup")
        .query(&mut c)
        .unwrap();
    let text = format!("{info:?}");
    assert!(text.contains("write") && text.contains("denyoom"), "{text}");
    assert!(text.contains("readonly"), "{text}");
    let keys: Vec<String> = cmd("COMMAND")
        .arg("GETKEYS")
        .arg("auscout.addtrack")
        .arg("idx")
        .arg("h")
        .arg("d")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, vec!["idx"]);
}

#[test]
fn an_invalid_config_argument_refuses_to_load() {
    // A valid argument list first, so the check below is known to tell the cases apart.
    let cases: [(&[&str], bool); 5] = [
        (&["default-threshold", "0.5"], true),
        (&["default-threshold", "abc"], false),
        (&["default-threshold", "1.5"], false),
        (&["max-toggle-bits", "99"], false),
        (&["threads", "0"], false),
    ];
    for (args, loads) in cases {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(
            std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()),
        )
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir.path())
        .arg("--loadmodule")
        .arg(common::module_path())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut exited = None;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        if loads {
            assert!(exited.is_none(), "{args:?}: server exited ({exited:?})");
        } else {
            assert!(
                exited.is_some_and(|s| !s.success()),
                "{args:?}: server kept running"
            );
        }
    }
}
