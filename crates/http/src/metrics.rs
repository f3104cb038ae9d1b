//! Request metrics in the Prometheus text format (`GET /metrics`): requests
//! by route and status, a latency histogram per route, errors by code, and
//! the lookups served. Kept in one small map behind a mutex: a request
//! updates it once, far below the cost of anything it does.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    /// Count per bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    lookups: AtomicU64,
    matched: AtomicU64,
}

impl Metrics {
    /// One finished request: `route` is the matched route pattern (never the
    /// raw path, so ids do not make new series).
    pub fn record(
        &self,
        method: &str,
        route: &str,
        status: u16,
        elapsed: Duration,
        error: Option<&'static str>,
    ) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_owned()).or_default();
            let s = elapsed.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|&b| s <= b) {
                h.buckets[i] += 1;
            }
            h.count += 1;
            h.sum += s;
        }
        if let Some(code) = error {
            if let Ok(mut e) = self.errors.lock() {
                *e.entry(code).or_default() += 1;
            }
        }
    }

    /// A lookup answered, and whether it found a track.
    pub fn lookup(&self, matched: bool) {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        if matched {
            self.matched.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (lookups, of which matched) since the service started.
    pub fn lookups(&self) -> (u64, u64) {
        (
            self.lookups.load(Ordering::Relaxed),
            self.matched.load(Ordering::Relaxed),
        )
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP auscout_http_requests_total Requests answered, by method, route and status.\n",
        );
        out.push_str("# TYPE auscout_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "auscout_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP auscout_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE auscout_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                let route = escape(route);
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "auscout_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "auscout_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                     auscout_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                     auscout_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        out.push_str("# HELP auscout_http_errors_total Error responses, by error code.\n");
        out.push_str("# TYPE auscout_http_errors_total counter\n");
        if let Ok(e) = self.errors.lock() {
            for (code, n) in e.iter() {
                let _ = writeln!(out, "auscout_http_errors_total{{code=\"{code}\"}} {n}");
            }
        }
        let (lookups, matched) = self.lookups();
        let _ = write!(
            out,
            "# HELP auscout_http_lookups_total Lookups answered.\n\
             # TYPE auscout_http_lookups_total counter\n\
             auscout_http_lookups_total {lookups}\n\
             # HELP auscout_http_lookups_matched_total Lookups that found a track.\n\
             # TYPE auscout_http_lookups_matched_total counter\n\
             auscout_http_lookups_matched_total {matched}\n"
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("POST", "/v1/lookup", 200, Duration::from_millis(3), None);
        m.record("POST", "/v1/lookup", 200, Duration::from_millis(30), None);
        m.record(
            "POST",
            "/v1/lookup",
            415,
            Duration::from_millis(1),
            Some("unsupported_audio"),
        );
        let text = m.render();
        assert!(text.contains(
            "auscout_http_requests_total{method=\"POST\",route=\"/v1/lookup\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 2"), "{text}");
        assert!(text.contains("le=\"0.05\"} 3"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("auscout_http_errors_total{code=\"unsupported_audio\"} 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
