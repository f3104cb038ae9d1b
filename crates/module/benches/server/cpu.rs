//! CPU time by thread group (Linux `/proc`), so a run shows whether its
//! figures measure the server or the bench's own clients: on a 2-core
//! machine they share the cores.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/*/stat` times (`CLK_TCK`, 100 on Linux).
const TICKS: f64 = 100.0;

/// CPU seconds (user + system) of every thread of process `pid`, summed by
/// thread name.
pub fn by_thread_name(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (name) state ppid …": the name may hold spaces, so the
        // fields after it are counted from its closing parenthesis.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        *out.entry(name).or_insert(0.0) += (ticks(11) + ticks(12)) / TICKS;
    }
    out
}

/// `after - before`, by thread name.
pub fn spent(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .collect()
}
