//! What the benches that drive a real `redis-server` share
//! (`benches/server.rs`, `client/benches/scale.rs`): where the module is, and
//! their environment knobs.

use std::path::PathBuf;

/// The module a bench loads: `AUSCOUT_MODULE`, or the one cargo built. Benches
/// run from `target/release/deps/<bench>-*`: `cargo bench` leaves the module it
/// just built beside them; `cargo build` puts it one level up.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("AUSCOUT_MODULE") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    let beside = deps.join("libauscout.so");
    if beside.exists() {
        return beside;
    }
    deps.parent().expect("target dir").join("libauscout.so")
}

/// The environment variable `name` parsed, or `default` when it is unset or
/// does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
