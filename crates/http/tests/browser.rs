//! The page in a real browser: Debian's headless Chromium driven over
//! WebDriver (chromedriver), in front of the service (with an API key) and
//! a real redis-server with the module. Upload a clip → the right track is
//! shown; upload a long recording → what played when, segment by segment;
//! Listen with Chromium's fake microphone playing a track → that track is
//! shown; screenshots of the page are taken (page.png and page-phone.png,
//! in cargo's temporary directory for tests, or in `AUSCOUT_SCREENSHOTS`
//! when it is set: `make screenshots` renews docs/); a track is deleted
//! once the key is typed in and the confirmation accepted (not when it is
//! cancelled).
//!
//! No skipping: without `chromium` and `chromium-driver` the test fails
//! and says how to install them.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use auscout_testkit::Server;
use common::show::{recording_path, TRUTH};
use common::webdriver::Browser;
use common::{add_tracks, fixtures, get, Service};
use serde_json::json;

/// How long the page may take to show a file's match.
const FILE_WAIT: Duration = Duration::from_secs(20);
/// How long Listen may take to show what is playing (3 s of audio first,
/// then a query every 1.5 s).
const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// The service's API key (writes need it).
const API_KEY: &str = "s3cret";

/// The text of the match card in `container`, once it shows one.
fn match_card(container: &str) -> String {
    format!(
        "const c = document.querySelector('{container} .card.match'); \
         return c ? c.textContent : null;"
    )
}

#[test]
fn the_page_recognises_an_upload_and_the_microphone() {
    let redis = Server::start();
    let service = Service::start(redis.port, &["--api-key", API_KEY]);
    let f = fixtures();
    let ids = add_tracks(&service, Some(API_KEY));
    // The fake microphone plays track 2 (from its start, looping).
    let browser = Browser::start(Some(&f.path("track2.wav")));
    browser.goto(&format!("{}/", service.base));
    let tracks_listed = browser.wait_for(
        "const rows = document.querySelectorAll('#tracks tbody tr'); \
         return rows.length === 3 ? rows.length : null;",
        FILE_WAIT,
    );
    assert!(
        tracks_listed.is_some(),
        "the tracks view did not list 3 tracks"
    );

    // Every control has a name a screen reader can say.
    let unlabelled = browser.script(
        "return [...document.querySelectorAll('input, button')].filter(e => \
           !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && \
           !e.textContent.trim()).map(e => e.id || e.outerHTML);",
        json!([]),
    );
    assert_eq!(unlabelled, json!([]), "controls without a label");

    // Upload: the file input gets the clip's path, as a user picking it.
    let input = browser.find("#file");
    browser.send_keys(&input, f.path("clip.mp3").to_str().expect("utf-8 path"));
    let card = browser
        .wait_for(&match_card("#file-result"), FILE_WAIT)
        .expect("no match card after the upload");
    let card = card.as_str().unwrap_or_default();
    assert!(card.contains("track1.wav"), "wrong match card: {card}");
    assert!(
        card.contains("0:12.0"),
        "the card does not say 0:12.0: {card}"
    );

    // A long recording: no single match, but what played when, one
    // segment at a time.
    let input = browser.find("#file");
    let show = recording_path("show.mp3");
    browser.send_keys(&input, show.to_str().expect("utf-8 path"));
    let done = browser.wait_for(
        "const s = document.getElementById('timeline-status').textContent; \
         return /segments in/.test(s) ? s : null;",
        FILE_WAIT,
    );
    let timeline = browser.script(
        "return [...document.querySelectorAll('#segments li')].map(li => li.textContent);",
        json!([]),
    );
    assert!(done.is_some(), "the monitor did not finish: {timeline}");
    let timeline: Vec<String> = serde_json::from_value(timeline).expect("segment texts");
    assert_eq!(timeline.len(), TRUTH.len(), "{timeline:?}");
    for (text, (truth, when)) in timeline.iter().zip(TRUTH.iter().zip(["0:0", "0:2"])) {
        assert!(text.contains(truth.track), "{text} is not {}", truth.track);
        assert!(text.starts_with(when), "{text} does not start at {when}…");
    }

    let card = browser.script(
        "return document.querySelector('#file-result .card');",
        json!([]),
    );
    assert!(card.is_null(), "a recording shows a single match card");

    // Listen: the fake microphone plays track 2.
    let listen = browser.find("#listen");
    browser.click(&listen);
    let heard = browser
        .wait_for(&match_card("#listen-result"), LISTEN_WAIT)
        .unwrap_or_else(|| {
            let status = browser.script(
                "return document.getElementById('listen-status').textContent;",
                json!([]),
            );
            panic!("Listen showed no match within {LISTEN_WAIT:?}; status: {status}")
        });
    let heard = heard.as_str().unwrap_or_default();
    assert!(
        heard.contains("track2.wav"),
        "Listen shows the wrong track: {heard}"
    );
    let pressed = browser.script(
        "return document.getElementById('listen').getAttribute('aria-pressed');",
        json!([]),
    );
    assert_eq!(pressed, "true");

    // Tall enough for the tracks view too.
    browser.set_window_size(1280, 1400);
    let png = browser.screenshot();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is no PNG"
    );
    // A test run leaves the repository as it was: docs/ only on request.
    let shots = std::env::var_os("AUSCOUT_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::write(shots.join("page.png"), &png).expect("write page.png");
    // And as a phone shows it: one column, nothing cut off sideways.
    browser.set_window_size(390, 1200);
    let overflow = browser.script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        json!([]),
    );
    assert_eq!(overflow, 0, "the page scrolls sideways on a phone");
    std::fs::write(shots.join("page-phone.png"), browser.screenshot())
        .expect("write page-phone.png");

    browser.click(&listen);
    let stopped = browser.script(
        "return document.getElementById('listen').getAttribute('aria-pressed');",
        json!([]),
    );
    assert_eq!(stopped, "false");

    // Deleting: the server has a key, so the buttons appear once it is typed.
    let row = |id: u64| format!("#tracks tr[data-track-id='{id}']");
    let button = format!("{} button.delete", row(ids[1]));
    let hidden = |css: &str| {
        browser.script(
            "return document.querySelector(arguments[0]).hidden;",
            json!([css]),
        )
    };
    assert_eq!(hidden(&button), true, "Delete shown without the API key");
    browser.send_keys(&browser.find("#api-key"), API_KEY);
    assert_eq!(
        hidden(&button),
        false,
        "Delete hidden with the API key typed"
    );
    // Cancelled: nothing happens.
    browser.click(&browser.find(&button));
    let question = browser
        .dialog_text(FILE_WAIT)
        .expect("no confirmation asked");
    assert!(question.contains("track1.wav"), "{question}");
    browser.answer_dialog(false);
    assert_eq!(
        get(&service.url(&format!("/v1/tracks/{}", ids[1]))).status,
        200
    );
    // Confirmed: the row goes, the count follows, the track is gone.
    browser.click(&browser.find(&button));
    browser
        .dialog_text(FILE_WAIT)
        .expect("no confirmation asked");
    browser.answer_dialog(true);
    let gone = browser.wait_for(
        &format!(
            "return !document.querySelector(\"{}\") && \
             document.getElementById('stat-tracks').textContent === '2' ? true : null;",
            row(ids[1])
        ),
        FILE_WAIT,
    );
    assert!(gone.is_some(), "the deleted track is still listed");
    assert_eq!(
        get(&service.url(&format!("/v1/tracks/{}", ids[1]))).status,
        404
    );
}
