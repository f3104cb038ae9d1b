//! Adding, deleting, listing and reading tracks back; ids, statistics,
//! appends and imported descriptions.

use super::*;

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
