//! Every `auscout.*` command against a real redis-server: replies, key
//! handling, Redis conventions, and every bad input (error reply, server up,
//! nothing changed).

mod errors;
mod server;
mod tracks;

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
