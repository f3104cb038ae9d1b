//! A recording made of indexed tracks, for monitoring: the truth of what
//! plays when, and the recording encoded as the tests send it.

use std::path::PathBuf;
use std::sync::OnceLock;

use auscout_testkit::audio;

use super::{ffmpeg, fixtures, RATE, TRACK_SECONDS};

/// One excerpt of an indexed track in the recording.
pub struct Truth {
    pub track: &'static str,
    pub start: f64,
    pub end: f64,
    pub track_start: f64,
}

/// The recording's excerpts: after 2 s of silence, track 0 from 5 s for
/// 20 s, a hard cut to track 2 from its start for 20 s, then 3 s of
/// silence and unindexed music.
pub const TRUTH: [Truth; 2] = [
    Truth {
        track: "track0.wav",
        start: 2.0,
        end: 22.0,
        track_start: 5.0,
    },
    Truth {
        track: "track2.wav",
        start: 22.0,
        end: 42.0,
        track_start: 0.0,
    },
];

/// Seconds of unindexed music at the end of the long recording (monitoring
/// it takes a while, so a streamed reply shows its lines before the end).
const TAIL_SECONDS: f64 = 150.0;

/// `show.mp3`, `show.opus` (the excerpts, then 8 s of unindexed music) and
/// `long.mp3` (the same with a long unindexed tail), made once.
fn recordings() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fixtures().dir.join("monitor");
        std::fs::create_dir_all(&dir).expect("monitor fixture dir");
        // The same seeds as the fixtures' track{i}.wav.
        let track = |i: u64| audio::music(100 + i, TRACK_SECONDS, RATE);
        let silence = |s: f64| vec![0.0f32; (s * f64::from(RATE)) as usize];
        let mut show = silence(2.0);
        show.extend(audio::excerpt(&track(0), RATE, 5.0, 20.0));
        show.extend(audio::excerpt(&track(2), RATE, 0.0, 20.0));
        show.extend(silence(3.0));
        let mut long = show.clone();
        show.extend(audio::gain(&audio::music(77, 8.0, RATE), 0.8));
        long.extend(audio::gain(&audio::music(78, TAIL_SECONDS, RATE), 0.8));
        let wav = dir.join("show.wav");
        audio::write_wav(&wav, &show, RATE, 1);
        ffmpeg(
            &wav,
            &["-c:a", "libmp3lame", "-b:a", "128k"],
            &dir.join("show.mp3"),
        );
        ffmpeg(
            &wav,
            &["-c:a", "libopus", "-b:a", "64k"],
            &dir.join("show.opus"),
        );
        let long_wav = dir.join("long.wav");
        audio::write_wav(&long_wav, &long, RATE, 1);
        ffmpeg(
            &long_wav,
            &["-c:a", "libmp3lame", "-b:a", "96k"],
            &dir.join("long.mp3"),
        );
        dir
    })
}

/// The path of recording `name` (`show.mp3`, `show.opus`, `long.mp3`).
pub fn recording_path(name: &str) -> PathBuf {
    recordings().join(name)
}

pub fn recording(name: &str) -> Vec<u8> {
    std::fs::read(recording_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
