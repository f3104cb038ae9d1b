//! A replica ends up with the same ids, answers and digest as its primary,
//! including ids the primary assigned itself, and keeps assigning the same
//! ids after a failover.

use auscout_testkit::server as common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{info_field, wire, Server};
use rand::{Rng, SeedableRng};
use redis::{cmd, Connection, Value};

fn wait_in_sync(primary: &mut Connection, replica: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = info_field(replica, "replication", "master_link_status").as_deref() == Some("up");
        let p = info_field(primary, "replication", "master_repl_offset");
        let r = info_field(replica, "replication", "master_repl_offset");
        if up && p.is_some() && p == r {
            return;
        }
        assert!(Instant::now() < deadline, "replica did not catch up");
        sleep(Duration::from_millis(50));
    }
}

fn list(c: &mut Connection, key: &str) -> Vec<(i64, String, i64)> {
    let (_, page): (String, Vec<(i64, String, i64)>) = cmd("auscout.list")
        .arg(key)
        .arg(0)
        .arg("COUNT")
        .arg(10_000)
        .query(c)
        .unwrap();
    page
}

fn digest(c: &mut Connection, key: &str) -> Vec<String> {
    cmd("DEBUG").arg("DIGEST-VALUE").arg(key).query(c).unwrap()
}

#[test]
fn replica_has_the_same_ids_answers_and_digest() {
    // (no 5 s wait for more replicas before the full sync)
    let primary = Server::builder()
        .arg("--repl-diskless-sync-delay")
        .arg("0")
        .start();
    let replica = Server::start();
    let mut p = primary.conn();
    let mut r = replica.conn();
    // Some data before the replica attaches (full sync through RDB) …
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut tracks = Vec::new();
    for i in 0..10 {
        let h: Vec<u32> = (0..400).map(|_| rng.random()).collect();
        let _: i64 = cmd("auscout.addtrack")
            .arg("idx")
            .arg(wire(&h))
            .arg(format!("t{i}"))
            .query(&mut p)
            .unwrap();
        tracks.push(h);
    }
    let _: () = cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port)
        .query(&mut r)
        .unwrap();
    wait_in_sync(&mut p, &mut r);
    // … and more through the replication stream, with auto-assigned ids.
    for i in 0..10 {
        let h: Vec<u32> = (0..400).map(|_| rng.random()).collect();
        let _: i64 = cmd("auscout.add")
            .arg("idx")
            .arg(wire(&h))
            .query(&mut p)
            .unwrap();
        if i == 3 {
            let _: i64 = cmd("auscout.del").arg("idx").arg(2).query(&mut p).unwrap();
        }
        tracks.push(h);
    }
    // Auto ids inside MULTI/EXEC and from a script replicate as explicit ids too.
    let _: Value = redis::pipe()
        .atomic()
        .cmd("auscout.add")
        .arg("idx")
        .arg(wire(&[11, 12]))
        .cmd("auscout.addtrack")
        .arg("idx")
        .arg(wire(&[13]))
        .arg("in multi")
        .query(&mut p)
        .unwrap();
    let _: i64 = cmd("EVAL")
        .arg("return redis.call('auscout.addtrack', KEYS[1], ARGV[1], 'from lua')")
        .arg(1)
        .arg("idx")
        .arg(wire(&[14, 15, 16]))
        .query(&mut p)
        .unwrap();
    let last: i64 = cmd("auscout.add")
        .arg("idx")
        .arg(wire(&[1, 2, 3]))
        .query(&mut p)
        .unwrap();
    let _: i64 = cmd("auscout.append")
        .arg("idx")
        .arg(1)
        .arg(wire(&[9, 9]))
        .query(&mut p)
        .unwrap();
    let _: i64 = cmd("auscout.del")
        .arg("idx")
        .arg(last)
        .query(&mut p)
        .unwrap();
    let _: i64 = cmd("auscout.add")
        .arg("other")
        .arg(wire(&[5]))
        .query(&mut p)
        .unwrap();
    let _: () = cmd("auscout.delkey").arg("other").query(&mut p).unwrap();
    wait_in_sync(&mut p, &mut r);

    assert_eq!(list(&mut r, "idx"), list(&mut p, "idx"));
    assert_eq!(digest(&mut r, "idx"), digest(&mut p, "idx"));
    let exists: i64 = cmd("EXISTS").arg("other").query(&mut r).unwrap();
    assert_eq!(exists, 0);
    // The same answers to the same queries.
    for h in tracks.iter().step_by(3) {
        let q = wire(&h[100..300]);
        let t = wire(&[0; 200]);
        let a: Value = cmd("auscout.lookup")
            .arg("idx")
            .arg(&q)
            .arg(&t)
            .query(&mut p)
            .unwrap();
        let b: Value = cmd("auscout.lookup")
            .arg("idx")
            .arg(&q)
            .arg(&t)
            .query(&mut r)
            .unwrap();
        assert!(
            matches!(&a, Value::Array(hits) if !hits.is_empty()),
            "{a:?}"
        );
        assert_eq!(a, b);
    }
    // Writes are refused on the replica.
    let e: redis::RedisResult<i64> = cmd("auscout.add").arg("idx").arg(wire(&[1])).query(&mut r);
    assert!(e.is_err());

    // Failover: the promoted replica hands out the id the primary would have.
    let expected: i64 = last + 1;
    let _: () = cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    let id: i64 = cmd("auscout.add")
        .arg("idx")
        .arg(wire(&[7]))
        .query(&mut r)
        .unwrap();
    assert_eq!(id, expected);
}
