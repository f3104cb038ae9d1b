//! A write that panics half-way leaves no half-changed index answering
//! lookups. The faults are injected: this test needs the module built with
//! the `fault-injection` feature (`make test` runs it in the `checked`
//! profile: cargo test -p auscout-module --profile checked --features
//! fault-injection --test panic_safety), whose `auscout.faultinject n`
//! makes the `n`-th fault point of the next writes panic.
//!
//! Every fault point of an insert, an append in place, an append that moves
//! the track and a delete is tried in turn on a copy of one index: each
//! write gets an error reply, and the copy's digest (ids, descriptions,
//! hashes, id counter), listing and lookups are those of the original; the
//! same write then succeeds. A fault in the roll back itself leaves the key
//! refused until it is deleted.

use auscout_testkit::server as common;

use common::{wire, Server};
use rand::{Rng, SeedableRng};
use redis::{cmd, Connection, RedisResult, Value};

const TRACKS: usize = 30;

fn random_track(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<u32> {
    (0..len).map(|_| rng.random()).collect()
}

/// The error text of a reply that must be an error.
fn err_of(r: RedisResult<Value>) -> String {
    match r {
        Ok(v) => panic!("expected an error reply, got {v:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    }
}

/// What a reader can see of index `key`: its digest, its listing, and the
/// replies to lookups of slices of its tracks.
fn observed(c: &mut Connection, key: &str, queries: &[Vec<u32>]) -> Vec<Value> {
    let mut seen: Vec<Value> = vec![
        cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(key)
            .query(c)
            .expect("digest"),
        cmd("auscout.list")
            .arg(key)
            .arg(0)
            .arg("COUNT")
            .arg(10_000)
            .query(c)
            .expect("list"),
    ];
    for q in queries {
        let toggles = vec![0u32; q.len()];
        seen.push(
            cmd("auscout.lookup")
                .arg(key)
                .arg(wire(q))
                .arg(wire(&toggles))
                .query(c)
                .expect("lookup"),
        );
    }
    seen
}

fn arm(c: &mut Connection, n: u64, sticky: bool) {
    let mut arm = cmd("auscout.faultinject");
    arm.arg(n);
    if sticky {
        arm.arg("STICKY");
    }
    let _: () = arm.query(c).expect("auscout.faultinject");
}

/// Builds index `idx`; returns lookup queries (slices of its tracks).
fn build(c: &mut Connection, rng: &mut rand::rngs::StdRng) -> Vec<Vec<u32>> {
    let mut queries = Vec::new();
    for t in 0..TRACKS {
        let len = 1500 + rng.random_range(0..1500);
        let h = random_track(rng, len);
        let _: i64 = cmd("auscout.addtrack")
            .arg("idx")
            .arg(wire(&h))
            .arg(format!("track {t}"))
            .query(c)
            .expect("addtrack");
        if t % 6 == 0 {
            queries.push(h[300..700].to_vec());
        }
    }
    queries
}

#[test]
fn every_fault_in_a_write_leaves_the_index_as_it_was() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut queries = build(&mut c, &mut rng);
    let new = random_track(&mut rng, 4000);
    queries.push(new[100..500].to_vec());
    let more = random_track(&mut rng, 3000);
    let before = observed(&mut c, "idx", &queries);

    let writes: [(&str, Vec<Vec<u8>>); 4] = [
        ("auscout.addtrack", vec![wire(&new), b"new".to_vec()]),
        (
            "auscout.append",
            vec![TRACKS.to_string().into(), wire(&more)],
        ),
        ("auscout.append", vec![b"1".to_vec(), wire(&more)]),
        ("auscout.del", vec![b"5".to_vec()]),
    ];
    for (name, args) in &writes {
        let write = |c: &mut Connection| -> RedisResult<Value> {
            let mut w = cmd(name);
            w.arg("work");
            for a in args {
                w.arg(a);
            }
            w.query(c)
        };
        let mut fired = 0;
        for n in 1.. {
            let _: () = cmd("COPY")
                .arg("idx")
                .arg("work")
                .arg("REPLACE")
                .query(&mut c)
                .expect("COPY");
            arm(&mut c, n, false);
            let reply = write(&mut c);
            arm(&mut c, 0, false);
            if reply.is_ok() {
                break;
            }
            fired += 1;
            let e = err_of(reply);
            assert!(
                e.starts_with("ERR internal error in auscout: injected fault"),
                "{name} fault {n}: {e}"
            );
            assert_eq!(
                observed(&mut c, "work", &queries),
                before,
                "{name} fault {n}: the index changed"
            );
            write(&mut c).unwrap_or_else(|e| panic!("{name} after fault {n}: {e}"));
        }
        assert!(fired >= 1, "{name}: no fault point fired");
    }
    // The counters of INFO still add up: idx and work are two indexes.
    let info: String = cmd("INFO").arg("auscout").query(&mut c).expect("INFO");
    assert!(info.contains("auscout_indexes:2"), "{info}");
}

#[test]
fn a_failed_roll_back_refuses_the_key_until_it_is_deleted() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let queries = build(&mut c, &mut rng);
    let new = random_track(&mut rng, 2000);
    for delete in ["auscout.delkey", "DEL"] {
        let _: () = cmd("COPY")
            .arg("idx")
            .arg("work")
            .query(&mut c)
            .expect("COPY");
        arm(&mut c, 1, true);
        let reply: RedisResult<Value> = cmd("auscout.addtrack")
            .arg("work")
            .arg(wire(&new))
            .arg("new")
            .query(&mut c);
        arm(&mut c, 0, false);
        assert!(err_of(reply).starts_with("ERR internal error"));
        let damaged = "ERR this index was damaged";
        let refused: [RedisResult<Value>; 4] = [
            cmd("auscout.count").arg("work").query(&mut c),
            cmd("auscout.lookup")
                .arg("work")
                .arg(wire(&queries[0]))
                .arg(wire(&vec![0u32; queries[0].len()]))
                .query(&mut c),
            cmd("auscout.list").arg("work").query(&mut c),
            cmd("auscout.add").arg("work").arg(wire(&new)).query(&mut c),
        ];
        for r in refused {
            let e = err_of(r);
            assert!(e.starts_with(damaged), "{e}");
        }
        let _: Value = cmd(delete).arg("work").query(&mut c).expect("delete");
        let id: i64 = cmd("auscout.add")
            .arg("work")
            .arg(wire(&new))
            .query(&mut c)
            .expect("a fresh index in the deleted key");
        assert_eq!(id, 1);
        let _: () = cmd("auscout.delkey")
            .arg("work")
            .query(&mut c)
            .expect("delkey");
    }
    // The original was never touched.
    let n: i64 = cmd("auscout.count")
        .arg("idx")
        .query(&mut c)
        .expect("count");
    assert_eq!(n, TRACKS as i64);
}
