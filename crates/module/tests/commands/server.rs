//! The module as a Redis citizen: configs, the INFO section, keyspace
//! notifications, key specs and flags, refusing bad load arguments.

use super::*;

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
    assert_eq!(map["auscout.poll-us"], "0");
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
    for bad in ["-1", "1000001", "x"] {
        let r = config_set(&mut c, "auscout.poll-us", bad);
        assert!(r.is_err(), "poll-us {bad} accepted");
    }
    config_set(&mut c, "auscout.poll-us", "10000").unwrap();
    assert_eq!(config_get(&mut c, "auscout.poll-us"), "10000");
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
fn module_threads_stop_polling_once_lookups_stop() {
    let s = Server::builder()
        .module_arg("poll-us")
        .module_arg("10000")
        .start();
    let mut c = s.conn();
    let track: Vec<u32> = (0..20_000u32)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    add(&mut c, "idx", &track);
    // 1,000 frames at 4 toggle bits: split over the module threads.
    let (query, toggles) = (&track[5_000..6_000], vec![0x0000_000F_u32; 1_000]);
    for _ in 0..50 {
        let _: Value = cmd("auscout.lookup")
            .arg("idx")
            .arg(wire(query))
            .arg(wire(&toggles))
            .query(&mut c)
            .unwrap();
    }
    // The poller stops 10 ms after its last work; a second of quiet then
    // costs the server next to nothing (a thread polling all along: 1 s).
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = common::cpu_seconds(&mut c);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let spent = common::cpu_seconds(&mut c) - before;
    assert!(
        spent < 0.2,
        "an idle server spent {spent:.3} s of CPU in 1 s"
    );
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
