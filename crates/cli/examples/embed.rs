//! The README's embedding example, compiled so that it stays right:
//! fingerprint a clip and look it up in a running server.
//!
//!     cargo run --release -p auscout-cli --example embed -- clip.mp3 music

use auscout_client::{Access, Endpoint, LookupOptions, Store};
use auscout_fingerprint::{fingerprint_file, HashOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (path, key) = match (args.next(), args.next()) {
        (Some(path), Some(key)) => (path, key),
        _ => return Err("usage: embed CLIP KEY".into()),
    };
    let store = Store::open(
        Endpoint::new(None, "localhost", 6379, false)?,
        &key,
        None,
        Access::Read,
    )?;
    let clip = fingerprint_file(path.as_ref(), &HashOptions::default())?;
    let (matches, _elapsed) =
        store.lookup(&clip.hashes, &clip.toggles, LookupOptions::default())?;
    for m in matches {
        println!(
            "{} at {:.2} s, score {:.2}",
            m.descr,
            clip.position_seconds(m.position as usize),
            m.score
        );
    }
    Ok(())
}
