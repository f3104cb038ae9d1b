//! Wrong types and bad input: an error reply, the server up, nothing changed.

use super::*;

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
