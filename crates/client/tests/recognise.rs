//! The lookup's fallbacks against a real redis-server with the module:
//! clips played fast, slow or pitched are found with their warp; unrelated
//! audio is not found by any pass.

use auscout_client::recognise::{recognise, Clip, Fallbacks, Recognition, Warp, DEFAULT_DEEP};
use auscout_client::store::{Access, Endpoint, LookupOptions, Store, TrackMatch};
use auscout_client::ClientError;
use auscout_fingerprint::{fingerprint_samples, FingerprintError, HashOptions};
use auscout_testkit::{audio, Server};

const RATE: u32 = 44_100;

/// Any failure, as text (the tests only show it).
#[derive(Debug)]
struct Error(#[allow(dead_code)] String);

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error(e.to_string())
    }
}

impl From<FingerprintError> for Error {
    fn from(e: FingerprintError) -> Self {
        Error(e.to_string())
    }
}

fn opts() -> HashOptions {
    HashOptions {
        max_toggle_bits: 8,
        ..HashOptions::default()
    }
}

/// A server holding tracks 1..=4 of synthetic music (40 s each).
fn indexed() -> (Server, Store, Vec<Vec<f32>>) {
    let server = Server::start();
    let endpoint = Endpoint::new(None, "127.0.0.1", server.port, false).expect("endpoint");
    let store = Store::open(endpoint, "songs", None, Access::Write).expect("open");
    let tracks: Vec<Vec<f32>> = (1..=4).map(|s| audio::music(s, 40.0, RATE)).collect();
    let index = HashOptions {
        probe_budget: 0,
        toggle_bits: 0,
        ..HashOptions::default()
    };
    for (k, t) in tracks.iter().enumerate() {
        let fp = fingerprint_samples(t, RATE, &index).expect("fingerprint");
        store
            .add_track(&fp.hashes, &format!("track{}", k + 1))
            .expect("add");
    }
    (server, store, tracks)
}

/// `recognise` as `lookup --json` runs it: each match with its speed.
fn look(store: &Store, clip: &Clip) -> Recognition<TrackMatch> {
    let base = LookupOptions {
        with_speed: true,
        ..LookupOptions::default()
    };
    recognise(clip, &Fallbacks::default(), |fp, attempt| {
        let options = attempt.options(base);
        Ok::<_, Error>(store.lookup(&fp.hashes, &fp.toggles, options)?.0)
    })
    .expect("recognise")
}

/// `seconds` of `track` from `start`, played `speed` times fast (pitch
/// and tempo): the excerpt declared at a higher rate, resampled back.
fn played_fast(track: &[f32], start: f64, seconds: f64, speed: f64) -> Vec<f32> {
    let excerpt = audio::excerpt(track, RATE, start, seconds * speed);
    audio::resample(&excerpt, (f64::from(RATE) * speed).round() as u32, RATE)
}

#[test]
fn a_track_played_7_percent_fast_is_found_with_its_speed() {
    let (_server, store, tracks) = indexed();
    let clip =
        Clip::from_samples(&played_fast(&tracks[2], 12.0, 5.0, 1.07), RATE, &opts()).expect("clip");
    // The clip as played is too far off for one lookup.
    let first = store
        .lookup(
            &clip.fingerprint().hashes,
            &clip.fingerprint().toggles,
            LookupOptions::default(),
        )
        .expect("lookup")
        .0;
    assert!(first.is_empty(), "{first:?}");
    let found = look(&store, &clip);
    let best = found.matches.first().expect("found by a fallback");
    assert_eq!(best.descr, "track3");
    assert_eq!(found.warp, Warp::speed(1.07));
    // The server measures what is left after the warp: together, the speed
    // the clip was played at.
    let speed = found.warp.tempo * best.speed.expect("asked for the speed");
    assert!((speed - 1.07).abs() < 0.01, "measured speed {speed}");
    // The offset is in the track's own time: 12 s in.
    let offset = best.position as f64 * 64.0 / 6000.0;
    assert!((offset - 12.0).abs() < 0.5, "offset {offset}");
    assert!(found.passes.len() >= 2);
}

#[test]
fn a_track_played_10_percent_slow_is_found_by_the_nearest_warp() {
    let (_server, store, tracks) = indexed();
    let clip =
        Clip::from_samples(&played_fast(&tracks[0], 20.0, 5.0, 0.90), RATE, &opts()).expect("clip");
    let fp = clip.fingerprint();
    let first = store
        .lookup(&fp.hashes, &fp.toggles, LookupOptions::default())
        .expect("lookup")
        .0;
    assert!(first.is_empty(), "{first:?}");
    let found = look(&store, &clip);
    let best = found.matches.first().expect("found by a fallback");
    assert_eq!(best.descr, "track1");
    assert_eq!(found.warp, Warp::speed(0.93));
    let speed = found.warp.tempo * best.speed.expect("asked for the speed");
    assert!((speed - 0.90).abs() < 0.009, "measured speed {speed}");
}

#[test]
fn a_clip_found_as_played_makes_one_lookup() {
    let (_server, store, tracks) = indexed();
    let excerpt = audio::excerpt(&tracks[1], RATE, 8.0, 5.0);
    let clip = Clip::from_samples(&excerpt, RATE, &opts()).expect("clip");
    let found = look(&store, &clip);
    assert_eq!(
        found.matches.first().map(|m| m.descr.as_str()),
        Some("track2")
    );
    assert_eq!(found.warp, Warp::NONE);
    assert_eq!(found.passes.len(), 1);
    let speed = found.matches[0].speed.expect("asked for the speed");
    assert!((speed - 1.0).abs() < 0.005, "measured speed {speed}");
}

#[test]
fn unrelated_audio_is_found_by_no_pass() {
    let (_server, store, _) = indexed();
    for seed in [90, 91, 92] {
        let other = audio::music(seed, 12.0, RATE);
        for (start, len) in [(1.0, 2.0), (2.0, 5.0), (1.0, 10.0)] {
            let clip = Clip::from_samples(&audio::excerpt(&other, RATE, start, len), RATE, &opts())
                .expect("clip");
            let found = look(&store, &clip);
            assert!(
                found.matches.is_empty(),
                "seed {seed} {len} s: {:?}",
                found.matches
            );
            // Every fallback was tried: each warp, then the deep pass.
            assert_eq!(found.passes.len(), 1 + Fallbacks::default().warps.len() + 1);
        }
    }
}

#[test]
fn a_clip_under_heavy_noise_is_found_by_the_deep_pass() {
    let (_server, store, tracks) = indexed();
    // 10 s of track 4 under white noise 10 dB louder than the music.
    let x = audio::add_noise(&audio::excerpt(&tracks[3], RATE, 15.0, 10.0), -10.0, 10);
    let clip = Clip::from_samples(&x, RATE, &opts()).expect("clip");
    let fp = clip.fingerprint();
    let first = store
        .lookup(&fp.hashes, &fp.toggles, LookupOptions::default())
        .expect("lookup")
        .0;
    assert!(first.is_empty(), "{first:?}");
    let found = look(&store, &clip);
    let best = found.matches.first().expect("found by the deep pass");
    assert_eq!(best.descr, "track4");
    let offset = best.position as f64 * 64.0 / 6000.0;
    assert!((offset - 15.0).abs() < 0.5, "offset {offset}");
    // Found as played, after every warp, by the last pass: the deep one.
    assert_eq!(found.warp, Warp::NONE);
    let last = found.passes.last().expect("passes");
    assert_eq!(last.attempt.verified, Some(DEFAULT_DEEP.verified));
    assert_eq!(found.passes.len(), 1 + Fallbacks::default().warps.len() + 1);
}
