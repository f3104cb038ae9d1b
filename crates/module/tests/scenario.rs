//! The original C++ client's own test scenario (testclient.cpp of
//! Redis-AudioScout), run against this module.

use auscout_testkit::server as common;

use common::{wire, Server};
use rand::{Rng, SeedableRng};
use redis::{cmd, Value};

#[test]
fn original_client_scenario() {
    let s = Server::start();
    let mut c = s.conn();
    let key = "mytests";
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);

    // 10 × 100 random sequences of up to 10,000 frames.
    for i in 0..1000 {
        let n = rng.random_range(1..10_000);
        let frames: Vec<u32> = (0..n).map(|_| rng.random()).collect();
        let id: i64 = cmd("auscout.addtrack")
            .arg(key)
            .arg(wire(&frames))
            .arg(format!("Sequence #{i}"))
            .query(&mut c)
            .unwrap();
        assert!(id > 0);
    }
    let count: i64 = cmd("auscout.count").arg(key).query(&mut c).unwrap();
    assert_eq!(count, 1000);
    let size: i64 = cmd("auscout.size").arg(key).query(&mut c).unwrap();
    assert!(size > 0);

    // The unique sequence 100, 200, 300, … of 5,000 frames.
    let unique: Vec<u32> = (1..=5000).map(|i| i * 100).collect();
    let id: i64 = cmd("auscout.addtrack")
        .arg(key)
        .arg(wire(&unique))
        .arg("mysequence")
        .query(&mut c)
        .unwrap();
    let count: i64 = cmd("auscout.count").arg(key).query(&mut c).unwrap();
    assert_eq!(count, 1001);

    // A 500-frame query 2300, 2400, … with no toggles at threshold 0.8.
    let query: Vec<u32> = (0..500).map(|i| 2300 + i * 100).collect();
    let reply: Vec<Value> = cmd("auscout.lookup")
        .arg(key)
        .arg(wire(&query))
        .arg(wire(&[0; 500]))
        .arg(0.8)
        .query(&mut c)
        .unwrap();
    assert_eq!(reply.len(), 1, "exactly one match: {reply:?}");
    let (descr, found, pos, score): (String, i64, i64, f64) =
        redis::from_redis_value(&reply[0]).unwrap();
    assert_eq!(descr, "mysequence");
    assert_eq!(found, id);
    assert_eq!(pos, 22);
    assert!((0.8..=1.0).contains(&score), "score {score}");

    let removed: i64 = cmd("auscout.del").arg(key).arg(id).query(&mut c).unwrap();
    assert_eq!(removed, 5000);
    let count: i64 = cmd("auscout.count").arg(key).query(&mut c).unwrap();
    assert_eq!(count, 1000);

    let ok: String = cmd("auscout.delkey").arg(key).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let count: i64 = cmd("auscout.count").arg(key).query(&mut c).unwrap();
    assert_eq!(count, 0);
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 0, "no keys left behind");
}
