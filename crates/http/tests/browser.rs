//! The page in a real browser: Debian's headless Chromium driven over
//! WebDriver (chromedriver), in front of the service and a real
//! redis-server with the module. Upload a file → the right track is shown;
//! Listen with Chromium's fake microphone playing a track → that track is
//! shown; screenshots of the page go to docs/page.png and docs/page-phone.png.
//!
//! No skipping: without `chromium` and `chromium-driver` the test fails
//! and says how to install them.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use auscout_testkit::Server;
use common::webdriver::Browser;
use common::{add_tracks, fixtures, Service};
use serde_json::json;

/// How long the page may take to show a file's match.
const FILE_WAIT: Duration = Duration::from_secs(20);
/// How long Listen may take to show what is playing (3 s of audio first,
/// then a query every 1.5 s).
const LISTEN_WAIT: Duration = Duration::from_secs(10);

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
    let service = Service::start(redis.port, &[]);
    let f = fixtures();
    add_tracks(&service, None);
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

    let png = browser.screenshot();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is no PNG"
    );
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    std::fs::write(docs.join("page.png"), &png).expect("write docs/page.png");
    // And as a phone shows it: one column, nothing cut off sideways.
    browser.set_window_size(390, 1200);
    let overflow = browser.script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        json!([]),
    );
    assert_eq!(overflow, 0, "the page scrolls sideways on a phone");
    std::fs::write(docs.join("page-phone.png"), browser.screenshot())
        .expect("write docs/page-phone.png");

    browser.click(&listen);
    let stopped = browser.script(
        "return document.getElementById('listen').getAttribute('aria-pressed');",
        json!([]),
    );
    assert_eq!(stopped, "false");
}
