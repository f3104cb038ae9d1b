//! Unit tests of the follower on synthetic hash streams: boundaries to the
//! frame, a late lookup, a fast station, dropouts, a track that stops.

use super::*;

/// Deterministic pseudo-random hashes (xorshift).
fn hashes(seed: u64, n: usize) -> Vec<u32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 16) as u32
        })
        .collect()
}

/// `h` with `bits` of its 32 bits flipped (a copy heard through noise).
fn noisy(h: u32, bits: u32, salt: u32) -> u32 {
    let mut out = h;
    for k in 0..bits {
        out ^= 1 << ((salt.wrapping_mul(7).wrapping_add(k * 11)) % 32);
    }
    out
}

/// A stream of `len` unrelated frames with `track[from..from+n]` (3 bits
/// off per frame) at stream frames `at..at+n`.
fn stream_with(track: &[u32], from: usize, n: usize, at: usize, len: usize) -> Vec<Option<u32>> {
    let mut s: Vec<Option<u32>> = hashes(999, len).into_iter().map(Some).collect();
    for i in 0..n {
        s[at + i] = Some(noisy(track[from + i], 3, i as u32));
    }
    s
}

/// A follower of `track` at offset 0 over the whole `stream`, its span
/// settled around `anchor` at the level the span itself shows.
fn settled_at_its_level(track: &Arc<Vec<u32>>, stream: &[Option<u32>], anchor: u64) -> Follower {
    let mut f = Follower::new(1, "t".into(), Arc::clone(track), 0, 0);
    follow_forward(&mut f, stream);
    f.settle(anchor);
    f.estimate_theta();
    f.settle(anchor);
    f
}

fn follow_forward(f: &mut Follower, stream: &[Option<u32>]) {
    while (f.hi() as usize) + BLOCK <= stream.len() {
        let q = f.hi() as usize;
        f.push_block(&stream[q..q + BLOCK]);
    }
}

#[test]
fn the_segment_is_where_the_track_is_heard_within_a_few_frames() {
    let track = Arc::new(hashes(1, 2000));
    // Track frames 500..1500 at stream frames 300..1300: offset 200.
    let stream = stream_with(&track, 500, 1000, 300, 1600);
    let mut f = Follower::new(7, "t".into(), Arc::clone(&track), 200, 0);
    follow_forward(&mut f, &stream);
    f.settle(800);
    assert!(f.start.abs_diff(300) <= 4, "start {}", f.start);
    assert!(f.end.abs_diff(1300) <= 4, "end {}", f.end);
    assert_eq!(f.track_frame(300), 500);
    assert!(f.score() > 0.7, "score {}", f.score());
    // The level of a copy 3 bits off per frame, and theta halfway to chance.
    let level = f.estimate_theta();
    assert!((level - 3.0 / 32.0).abs() < 0.02, "level {level}");
    assert!((f.theta() - (level + CHANCE_BER) / 2.0).abs() < 1e-9);
}

#[test]
fn the_start_is_found_going_back_from_a_late_lookup() {
    let track = Arc::new(hashes(2, 2000));
    let stream = stream_with(&track, 500, 1000, 300, 1600);
    // Found by a lookup at stream frame 800: followed forward from there,
    // then back block by block.
    let mut f = Follower::new(1, "t".into(), Arc::clone(&track), 200, 800);
    assert_eq!(f.lo(), 800);
    follow_forward(&mut f, &stream);
    while f.lo() as usize >= BLOCK {
        let lo = f.lo() as usize;
        f.push_block_back(&stream[lo - BLOCK..lo]);
    }
    assert_eq!(f.lo(), 0);
    f.settle(800);
    assert!(f.start.abs_diff(300) <= 4, "start {}", f.start);
    assert!(f.end.abs_diff(1300) <= 4, "end {}", f.end);
    // Frames outside the span go; the span stays.
    f.trim_before(f.start);
    assert!(f.lo() <= f.start && f.start - f.lo() < BLOCK as u64);
}

#[test]
fn a_fast_station_is_followed_and_its_speed_measured() {
    let track = Arc::new(hashes(3, 4000));
    // Played 3 % fast: stream frame q is track frame 100 + 1.03·q.
    let stream: Vec<Option<u32>> = (0..2400)
        .map(|q| {
            let p = 100 + (q as f64 * 1.03).round() as usize;
            Some(noisy(track[p], 2, q as u32))
        })
        .collect();
    let mut f = Follower::new(1, "t".into(), Arc::clone(&track), 100, 0);
    follow_forward(&mut f, &stream);
    f.settle(0);
    assert!(f.end >= 2300, "followed to {} of 2400", f.end);
    let speed = f.speed();
    assert!((speed - 1.03).abs() < 0.005, "speed {speed}");
}

#[test]
fn a_short_dropout_does_not_split_the_segment() {
    let track = Arc::new(hashes(4, 2000));
    let mut stream = stream_with(&track, 0, 1200, 0, 1200);
    // 2 s without audio (about 190 frames) in the middle.
    for h in &mut stream[500..690] {
        *h = None;
    }
    let mut f = Follower::new(1, "t".into(), Arc::clone(&track), 0, 0);
    follow_forward(&mut f, &stream);
    f.settle(0);
    assert!(f.end >= 1190, "end {}", f.end);
    assert_eq!(f.start, 0);
    // Frames without audio count as chance, not as errors of the track.
    assert_eq!(block_ber(&[MISSING; 4]), CHANCE_BER);
}

#[test]
fn a_track_that_stops_ends_the_segment_and_its_times_stay_in_the_track() {
    // The stream goes on past the track's last frame.
    let track = Arc::new(hashes(5, 600));
    let stream = stream_with(&track, 100, 500, 0, 1000);
    let mut f = Follower::new(1, "t".into(), Arc::clone(&track), 100, 0);
    follow_forward(&mut f, &stream);
    f.settle(0);
    assert!(f.end.abs_diff(500) <= 4, "end {}", f.end);
    let (frames, fall) = f.since_end();
    assert!(frames >= 490 && fall > 0.0, "{frames} frames, fall {fall}");
    // Past the track's end a frame counts as chance.
    assert_eq!(frame_errors(&track, Some(0), 600), 16);
    assert_eq!(frame_errors(&track, Some(0), -1), 16);
    assert_eq!(frame_errors(&track, None, 5), MISSING);
}

#[test]
fn the_boundaries_reach_where_the_track_is_heard_faintly_but_not_past_a_cut() {
    let track = Arc::new(hashes(6, 3000));
    // Unrelated frames, then the track faintly (12 bits of 32 off: a
    // crossfade's start, talk over it) for 150 frames, then clearly.
    let mut stream: Vec<Option<u32>> = hashes(998, 1600).into_iter().map(Some).collect();
    for q in 400..550 {
        stream[q] = Some(noisy(track[q], 12, q as u32));
    }
    for q in 550..1200 {
        stream[q] = Some(noisy(track[q], 2, q as u32));
    }
    let f = settled_at_its_level(&track, &stream, 800);
    // The span holds the clear part; the faint part is heard as well.
    assert!(f.start.abs_diff(550) <= 8, "span starts at {}", f.start);
    let (start, end) = f.heard(34);
    assert!(start.abs_diff(400) <= 16, "heard from {start}");
    // A cut to unrelated audio: nothing past the span's end.
    assert_eq!(end, f.end);
    assert!(f.end.abs_diff(1200) <= 8, "end {}", f.end);
}

/// A fade-in: the frames just before the span hear the track fairly (a
/// louder stretch of the fade), those before them only faintly, too
/// faintly to be evidence on their own.
#[test]
fn a_fade_in_is_heard_back_to_its_faint_start_through_the_frames_that_straddle_the_span() {
    let track = Arc::new(hashes(8, 3000));
    let mut stream: Vec<Option<u32>> = hashes(996, 1600).into_iter().map(Some).collect();
    // 13 of 32 bits off (BER 0.41): a little under what counts as heard.
    for q in 400..516 {
        stream[q] = Some(noisy(track[q], 13, q as u32));
    }
    // 9 bits off (0.28): above the span's threshold, but heard.
    for q in 516..550 {
        stream[q] = Some(noisy(track[q], 9, q as u32));
    }
    for q in 550..1200 {
        stream[q] = Some(noisy(track[q], 2, q as u32));
    }
    let f = settled_at_its_level(&track, &stream, 800);
    assert!(f.start.abs_diff(550) <= 8, "span starts at {}", f.start);
    let faint = 116.0 * (f.chance_near(550).min(0.5) - HEARD_MARGIN - 13.0 / 32.0);
    assert!(
        faint > 0.0 && faint < HEARD_EVIDENCE,
        "the faint frames alone: {faint}"
    );
    let (start, _) = f.heard(34);
    assert!(start.abs_diff(400) <= 16, "heard from {start}");
}

/// The frames that straddle the span's start hear the track (10 bits of
/// 32 off: above the span's threshold, below chance), the frames before
/// them are unrelated: the straddle alone holds the evidence, and the
/// start is not pushed past it into the unrelated audio.
#[test]
fn evidence_in_the_straddle_alone_does_not_push_the_start_past_it() {
    let track = Arc::new(hashes(9, 3000));
    let mut stream: Vec<Option<u32>> = hashes(995, 1600).into_iter().map(Some).collect();
    for q in 566..600 {
        stream[q] = Some(noisy(track[q], 10, q as u32));
    }
    for q in 600..1300 {
        stream[q] = Some(noisy(track[q], 2, q as u32));
    }
    let f = settled_at_its_level(&track, &stream, 900);
    assert!(f.start.abs_diff(600) <= 2, "span starts at {}", f.start);
    let straddle = 34.0 * (f.chance_near(f.start).min(0.5) - HEARD_MARGIN - 10.0 / 32.0);
    assert!(straddle >= HEARD_EVIDENCE, "straddle holds {straddle}");
    let (start, _) = f.heard(34);
    assert!(
        start + 34 >= f.start,
        "heard from {start}, span from {}",
        f.start
    );
}

/// Audio that runs against the control alignment (its frames anti-
/// correlated with the track 937 frames away) measures "chance" far above
/// 0.5 there; frames at chance before the start must still not be heard.
#[test]
fn frames_at_chance_are_not_heard_where_the_control_runs_against_the_track() {
    // A smooth track: each hash held for 8 frames, as neighbouring frames
    // of real audio are alike, so the control's search over nearby offsets
    // finds the same anti-correlation everywhere.
    let track: Vec<u32> = hashes(7, 400).iter().flat_map(|&h| [h; 8]).collect();
    let track = Arc::new(track);
    let mut stream: Vec<Option<u32>> = hashes(997, 2000).into_iter().map(Some).collect();
    // Stream frames 300..1400: 15 bits off the track at the alignment
    // (BER 0.47, chance), those bits chosen where the track agrees with
    // its control frame (937 frames earlier, or later near its start), so
    // the control sees a BER near 1.
    for q in 300..1400 {
        let t = track[q];
        let c = track[if q >= 937 { q - 937 } else { q + 937 }];
        let mut h = t;
        for bit in (0..32).filter(|b| (t ^ c) >> b & 1 == 0).take(15) {
            h ^= 1 << bit;
        }
        stream[q] = Some(h);
    }
    for q in 1400..2000 {
        stream[q] = Some(noisy(track[q], 2, q as u32));
    }
    let f = settled_at_its_level(&track, &stream, 1700);
    assert!(f.start.abs_diff(1400) <= 8, "span starts at {}", f.start);
    let control = f.chance_near(f.start);
    assert!(control > 0.6, "control {control}");
    let (start, _) = f.heard(34);
    assert_eq!(start, f.start, "heard from {start}, span from {}", f.start);
}

#[test]
fn a_fast_station_is_found_again_after_a_stretch_where_it_is_not_heard() {
    let track = Arc::new(hashes(7, 4000));
    // 3 % fast, with 6 s (560 frames) of unrelated audio over it: the
    // alignment drifts 17 frames meanwhile.
    let noise = hashes(997, 2400);
    let stream: Vec<Option<u32>> = (0..2400)
        .map(|q| {
            let p = 100 + (q as f64 * 1.03).round() as usize;
            if (900..1460).contains(&q) {
                Some(noise[q])
            } else {
                Some(noisy(track[p], 2, q as u32))
            }
        })
        .collect();
    let mut f = Follower::new(1, "t".into(), Arc::clone(&track), 100, 0);
    f.rejoin = 20.0;
    follow_forward(&mut f, &stream);
    assert!(f.end >= 2300, "followed to {} of 2400", f.end);
    assert!((f.speed() - 1.03).abs() < 0.005, "speed {}", f.speed());
}
