//! The HTTP API end to end: the `auscout-http` binary in front of a real
//! redis-server with the module, real encoded audio, every route and every
//! error status.

mod common;

use auscout_testkit::Server;
use common::{add_tracks, delete, fixtures, get, post, post_form, Service};

/// Asserts a lookup reply found track `descr` with the clip starting 12 s in.
fn assert_found(reply: &common::Reply, descr: &str, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text());
    let v = reply.json();
    let best = &v["matches"][0];
    assert_eq!(best["descr"], descr, "{what}: {v}");
    let offset = best["offset_s"].as_f64().expect("offset_s");
    assert!((offset - 12.0).abs() < 0.1, "{what}: offset {offset}");
    let score = best["score"].as_f64().expect("score");
    assert!(score > 0.3 && score <= 1.0, "{what}: score {score}");
    let duration = v["duration_s"].as_f64().expect("duration_s");
    assert!((duration - 5.0).abs() < 0.1, "{what}: duration {duration}");
    for t in ["decode", "hash", "lookup", "total"] {
        assert!(v["timings_ms"][t].as_f64().is_some(), "{what}: timings {v}");
    }
}

/// The Content-Encoding of a GET sent with `Accept-Encoding: gzip` (over a
/// bare socket: the HTTP client would decode and hide it).
fn content_encoding(service: &Service, path: &str) -> Option<String> {
    let host = service.base.trim_start_matches("http://");
    let answer = common::raw_request(
        &service.base,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(answer.status, 200, "{path}: {}", answer.head);
    answer.header("content-encoding").map(str::to_owned)
}

#[test]
fn tracks_are_added_listed_found_and_deleted() {
    let redis = Server::start();
    let service = Service::start(redis.port, &[]);
    let f = fixtures();
    let ids = add_tracks(&service, None);
    assert_eq!(ids.len(), 3);

    // A multipart upload names the track after its file when no descr is given.
    let r = post_form(
        &service.url("/v1/tracks"),
        &[("audio", Some("named.wav"), &f.bytes("track0.wav"))],
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let named = r.json();
    assert_eq!(named["descr"], "named.wav");
    assert!((named["duration_s"].as_f64().unwrap() - common::TRACK_SECONDS).abs() < 0.5);
    let named_id = named["id"].as_u64().unwrap();

    // Every format, raw with its content type and as a form.
    for (file, mime) in [
        ("clip.wav", "audio/wav"),
        ("clip.mp3", "audio/mpeg"),
        ("clip.opus", "audio/ogg"),
        ("clip.webm", "audio/webm;codecs=opus"),
        ("clip.m4a", "audio/mp4"),
    ] {
        let raw = post(&service.url("/v1/lookup"), mime, &f.bytes(file), None);
        assert_found(&raw, "track1.wav", file);
        let form = post_form(
            &service.url("/v1/lookup?limit=1&threshold=0.2"),
            &[("audio", Some(file), &f.bytes(file))],
            None,
        );
        assert_found(&form, "track1.wav", file);
        assert_eq!(form.json()["matches"].as_array().unwrap().len(), 1);
    }
    // Audio in no track: an empty list, not an error.
    let r = post(
        &service.url("/v1/lookup"),
        "audio/wav",
        &f.bytes("stranger.wav"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let none = r.json();
    assert_eq!(none["matches"], serde_json::json!([]));
    // Nothing as played, nor undone by any of the fallbacks' warps.
    assert!(none["lookups"].as_u64().unwrap() > 1, "{none}");
    assert!(none.get("speed").is_none(), "{none}");
    // 7 % fast: found by a fallback, which says how it was changed.
    let r = post(
        &service.url("/v1/lookup"),
        "audio/wav",
        &f.bytes("clip-fast.wav"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let fast = r.json();
    assert_eq!(fast["matches"][0]["descr"], "track1.wav", "{fast}");
    let speed = fast["speed"].as_f64().expect("a speed");
    assert!((speed - 1.07).abs() < 0.03, "{fast}");
    assert!(fast["lookups"].as_u64().unwrap() > 1, "{fast}");
    // An index that does not exist matches nothing either.
    let r = post(
        &service.url("/v1/lookup?key=nothing-here"),
        "audio/wav",
        &f.bytes("clip.wav"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["matches"], serde_json::json!([]));

    // Paged listing: 4 tracks, 3 per page.
    let first = get(&service.url("/v1/tracks?count=3")).json();
    assert_eq!(first["total"], 4);
    assert_eq!(first["tracks"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let second = get(&service.url(&format!("/v1/tracks?count=3&cursor={cursor}"))).json();
    let rest = second["tracks"].as_array().unwrap();
    assert_eq!(rest.len(), 1, "{second}");
    assert_eq!(rest[0]["id"].as_u64(), Some(named_id));
    assert!(second["next_cursor"].is_null());

    let one = get(&service.url(&format!("/v1/tracks/{}", ids[1])));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["descr"], "track1.wav");

    let stats = get(&service.url("/v1/stats")).json();
    assert_eq!(stats["tracks"], 4);
    assert!(stats["frames"].as_u64().unwrap() > 4 * 2500, "{stats}");
    assert!(stats["memory_bytes"].as_u64().unwrap() > 10_000, "{stats}");
    assert_eq!(stats["lookups_served"], 13);
    assert_eq!(stats["lookups_matched"], 11);
    assert_eq!(stats["api_key_required"], false);

    let gone = delete(&service.url(&format!("/v1/tracks/{}", ids[1])), None);
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert!(gone.json()["frames_removed"].as_u64().unwrap() > 2500);
    get(&service.url(&format!("/v1/tracks/{}", ids[1]))).assert_error(404, "not_found");
    delete(&service.url(&format!("/v1/tracks/{}", ids[1])), None).assert_error(404, "not_found");
    let r = post(
        &service.url("/v1/lookup"),
        "audio/wav",
        &f.bytes("clip.wav"),
        None,
    );
    assert!(
        r.json()["matches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["descr"] != "track1.wav"),
        "a deleted track was found"
    );
}

#[test]
fn health_metrics_openapi_and_the_page() {
    let redis = Server::start();
    let service = Service::start(redis.port, &[]);
    let health = get(&service.url("/health"));
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");

    let page = get(&service.url("/"));
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.text().contains("id=\"listen\""));
    for (path, kind) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let r = get(&service.url(path));
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.content_type.starts_with(kind),
            "{path}: {}",
            r.content_type
        );
    }

    // The description names every route the service has, with its methods.
    let api = get(&service.url("/openapi.json")).json();
    assert_eq!(api["openapi"], "3.0.3");
    for (path, methods) in [
        ("/v1/lookup", &["post"][..]),
        ("/v1/monitor", &["post"][..]),
        ("/v1/tracks", &["get", "post"][..]),
        ("/v1/tracks/{id}", &["get", "delete"][..]),
        ("/v1/stats", &["get"][..]),
        ("/health", &["get"][..]),
        ("/metrics", &["get"][..]),
        ("/openapi.json", &["get"][..]),
    ] {
        for m in methods {
            assert!(
                api["paths"][path][m].is_object(),
                "openapi.json lacks {m} {path}"
            );
        }
    }

    get(&service.url("/no/such/route")).assert_error(404, "not_found");
    let metrics = get(&service.url("/metrics"));
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("text/plain"));
    let text = metrics.text();
    assert!(
        text.contains(
            "auscout_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains(
        "auscout_http_request_duration_seconds_bucket{route=\"/openapi.json\",le=\"+Inf\"} 1"
    ));
    assert!(
        text.contains("auscout_http_errors_total{code=\"not_found\"} 1"),
        "{text}"
    );
    // Replies are gzipped for clients that accept it, but not when they are
    // too small to gain from it.
    assert_eq!(
        content_encoding(&service, "/openapi.json").as_deref(),
        Some("gzip")
    );
    assert_eq!(content_encoding(&service, "/health"), None);
}

#[test]
fn every_error_has_its_status_and_a_json_body() {
    let redis = Server::start();
    // A small body limit, so the 413 needs no 20 MB upload; the tracks go
    // in through a second service without it, on the same Redis.
    let service = Service::start(redis.port, &["--body-limit", "400000"]);
    add_tracks(&Service::start(redis.port, &[]), None);
    let f = fixtures();
    let lookup = |query: &str, mime: &str, body: &[u8]| {
        post(
            &service.url(&format!("/v1/lookup{query}")),
            mime,
            body,
            None,
        )
    };
    let clip = f.bytes("clip.mp3");

    // 400: parameters.
    lookup("?threshold=1.5", "audio/mpeg", &clip).assert_error(400, "bad_request");
    lookup("?threshold=abc", "audio/mpeg", &clip).assert_error(400, "bad_request");
    lookup("?limit=0", "audio/mpeg", &clip).assert_error(400, "bad_request");
    lookup("?key=", "audio/mpeg", &clip).assert_error(400, "bad_request");
    get(&service.url("/v1/tracks?count=0")).assert_error(400, "bad_request");
    get(&service.url("/v1/tracks?cursor=garbage")).assert_error(400, "bad_request");
    get(&service.url("/v1/tracks/abc")).assert_error(400, "bad_request");
    get(&service.url("/v1/tracks/0")).assert_error(400, "bad_request");
    post_form(
        &service.url("/v1/lookup"),
        &[("file", Some("clip.mp3"), &clip)],
        None,
    )
    .assert_error(400, "bad_request");
    post(&service.url("/v1/tracks"), "audio/mpeg", &clip, None).assert_error(400, "bad_request"); // no descr, no file name

    // 404 and 405.
    get(&service.url("/v1/tracks/4242")).assert_error(404, "not_found");
    delete(&service.url("/v1/tracks/4242"), None).assert_error(404, "not_found");
    get(&service.url("/v2/lookup")).assert_error(404, "not_found");
    get(&service.url("/v1/lookup")).assert_error(405, "method_not_allowed");

    // 413: a body declared over the limit is refused before it is read,
    // raw and as a form (sent as browsers do: the head first, reading the
    // answer before writing more).
    for content_type in ["audio/wav", "multipart/form-data; boundary=x"] {
        let (status, body) = common::head_only(
            &service.base,
            &format!(
                "POST /v1/lookup HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n\
                 Content-Length: 5000000\r\n\r\n"
            ),
        );
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("\"payload_too_large\""), "{body}");
    }

    // 415: not audio, empty, JSON.
    lookup("", "application/octet-stream", &f.bytes("garbage.bin"))
        .assert_error(415, "unsupported_audio");
    lookup("", "audio/wav", b"").assert_error(415, "unsupported_audio");
    lookup("", "application/json", b"{\"audio\": 1}").assert_error(415, "unsupported_audio");
    let truncated = &f.bytes("clip.wav")[..40];
    lookup("", "audio/wav", truncated).assert_error(415, "unsupported_audio");

    // 422: shorter than one frame.
    lookup("", "audio/wav", &f.bytes("short.wav")).assert_error(422, "audio_too_short");
    post(
        &service.url("/v1/tracks?descr=short"),
        "audio/wav",
        &f.bytes("short.wav"),
        None,
    )
    .assert_error(422, "audio_too_short");

    // After all that, the service still answers.
    let ok = lookup("", "audio/mpeg", &clip);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["matches"][0]["descr"], "track1.wav");
    let errors = get(&service.url("/metrics")).text();
    assert!(
        errors.contains("auscout_http_errors_total{code=\"payload_too_large\"} 2"),
        "{errors}"
    );
}

#[test]
fn writes_need_the_api_key_when_one_is_set() {
    let redis = Server::start();
    let service = Service::start(redis.port, &["--api-key", "s3cret"]);
    let f = fixtures();
    let url = service.url("/v1/tracks?descr=t.wav");
    // Small: a refused upload is answered before its body is read, and a
    // big one would still be on its way when the connection closes.
    let wav = f.bytes("short.wav");
    let no_key = post(&url, "audio/wav", &wav, None);
    no_key.assert_error(401, "unauthorized");
    assert_eq!(no_key.www_authenticate.as_deref(), Some("Bearer"));
    post(&url, "audio/wav", &wav, Some("wrong")).assert_error(401, "unauthorized");
    let ids = add_tracks(&service, Some("s3cret"));

    // Reads need no key.
    assert_eq!(get(&service.url("/v1/tracks")).status, 200);
    let stats = get(&service.url("/v1/stats")).json();
    assert_eq!(stats["api_key_required"], true);
    let found = post(
        &service.url("/v1/lookup"),
        "audio/wav",
        &f.bytes("clip.wav"),
        None,
    );
    assert_eq!(found.json()["matches"][0]["descr"], "track1.wav");

    let one = service.url(&format!("/v1/tracks/{}", ids[0]));
    delete(&one, None).assert_error(401, "unauthorized");
    delete(&one, Some("s3cre")).assert_error(401, "unauthorized");
    assert_eq!(get(&one).status, 200, "a refused delete deleted");
    assert_eq!(delete(&one, Some("s3cret")).status, 200);
    assert_eq!(get(&one).status, 404);
}

#[test]
fn redis_down_is_503_and_the_service_recovers_without_a_restart() {
    let mut redis = Server::start();
    let mut service = Service::start(redis.port, &["--redis-retry", "0.5"]);
    let f = fixtures();
    add_tracks(&service, None);
    let clip = f.bytes("clip.wav");
    let lookup = || post(&service.url("/v1/lookup"), "audio/wav", &clip, None);
    assert_eq!(lookup().json()["matches"][0]["descr"], "track1.wav");

    // Persist, then stop Redis under the running service.
    let _: () = redis::cmd("SAVE").query(&mut redis.conn()).expect("SAVE");
    redis.stop();
    get(&service.url("/health")).assert_error(503, "redis_unavailable");
    lookup().assert_error(503, "redis_unavailable");
    get(&service.url("/v1/tracks")).assert_error(503, "redis_unavailable");
    get(&service.url("/v1/stats")).assert_error(503, "redis_unavailable");
    post(
        &service.url("/v1/tracks?descr=x.wav"),
        "audio/wav",
        &f.bytes("track2.wav"),
        None,
    )
    .assert_error(503, "redis_unavailable");
    // The page and the API description do not need Redis.
    assert_eq!(get(&service.url("/")).status, 200);
    assert_eq!(get(&service.url("/openapi.json")).status, 200);

    // Redis back (same port, its dump loaded): the same service answers.
    redis.resume();
    let health = get(&service.url("/health"));
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["tracks"], 3);
    let found = lookup();
    assert_eq!(found.status, 200, "{}", found.text());
    assert_eq!(found.json()["matches"][0]["descr"], "track1.wav");
    assert!(service.is_running());
    assert_eq!(service.terminate(), Some(true), "{}", service.log());
}

#[test]
fn a_sharded_index_lists_across_shards() {
    let redis = Server::start();
    let service = Service::start(redis.port, &["--shards", "3"]);
    let f = fixtures();
    let ids = add_tracks(&service, None);
    let mut seen = Vec::new();
    let mut cursor = "0".to_owned();
    for _ in 0..10 {
        let page = get(&service.url(&format!("/v1/tracks?count=1&cursor={cursor}"))).json();
        assert_eq!(page["total"], 3, "{page}");
        seen.extend(
            page["tracks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    seen.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(seen, want);
    for id in &ids {
        assert_eq!(get(&service.url(&format!("/v1/tracks/{id}"))).status, 200);
    }
    let found = post(
        &service.url("/v1/lookup"),
        "audio/wav",
        &f.bytes("clip.wav"),
        None,
    );
    assert_eq!(found.json()["matches"][0]["descr"], "track1.wav");
}

#[test]
fn concurrent_lookups_all_succeed() {
    let redis = Server::start();
    let service = Service::start(redis.port, &["--workers", "2"]);
    let f = fixtures();
    add_tracks(&service, None);
    let clips = ["clip.wav", "clip.mp3", "clip.webm", "clip.m4a"];
    std::thread::scope(|s| {
        for t in 0..8 {
            let service = &service;
            s.spawn(move || {
                for i in 0..3 {
                    let file = clips[(t + i) % clips.len()];
                    let r = post(
                        &service.url("/v1/lookup"),
                        "application/octet-stream",
                        &f.bytes(file),
                        None,
                    );
                    assert_found(&r, "track1.wav", file);
                }
            });
        }
    });
}

#[test]
fn a_request_over_the_timeout_is_503() {
    let redis = Server::start();
    let service = Service::start(redis.port, &["--request-timeout", "0.000001"]);
    let f = fixtures();
    post(
        &service.url("/v1/lookup"),
        "audio/wav",
        &f.bytes("clip.wav"),
        None,
    )
    .assert_error(503, "timeout");
}

#[test]
fn bad_flags_are_refused_with_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auscout-http"))
        .args(["--body-limit", "0"])
        .output()
        .expect("run auscout-http");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--body-limit"), "{err}");
}

/// `auscout_lookups` of a server's `INFO auscout`.
fn lookups_served(server: &Server) -> u64 {
    auscout_testkit::server::info_field(&mut server.conn(), "auscout", "auscout_lookups")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn lookups_can_read_from_a_replica() {
    let primary = Server::builder()
        .arg("--repl-diskless-sync-delay")
        .arg("0")
        .start();
    let replica = Server::builder()
        .arg("--replicaof")
        .arg("127.0.0.1")
        .arg(&primary.port.to_string())
        .start();
    let at = format!("127.0.0.1:{}", replica.port);
    let service = Service::start(primary.port, &["--replica", &at]);
    let f = fixtures();
    add_tracks(&service, None);
    auscout_testkit::wait_replicated(&primary, &[&replica]);
    let (on_primary, on_replica) = (lookups_served(&primary), lookups_served(&replica));
    for _ in 0..3 {
        let r = post(
            &service.url("/v1/lookup"),
            "audio/wav",
            &f.bytes("clip.wav"),
            None,
        );
        assert_found(&r, "track1.wav", "via the replica");
    }
    assert_eq!(lookups_served(&replica) - on_replica, 3);
    assert_eq!(lookups_served(&primary), on_primary);
}
