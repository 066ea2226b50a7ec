//! Results: one row per measured phase, the markdown table, the JSON file,
//! and the side-by-side comparison of two JSON files.

use serde::{Deserialize, Serialize};

use crate::server::Usage;
use crate::stats::{LoopOut, percentiles};

/// What a phase's throughput counts.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    Requests,
    Images,
    Ops,
    Bytes,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub scenario: String,
    pub ok: u64,
    pub errors: u64,
    pub requests: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub throughput: f64,
    /// "req/s", "images/s", "ops/s" or "MB/s" (MB = 10^6 bytes).
    pub unit: String,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub cpu_s: Option<f64>,
    /// Server CPU seconds per `cpu_per_unit`.
    pub cpu_per: Option<f64>,
    /// "1k req" or "GB" (10^9 bytes).
    pub cpu_per_unit: String,
    pub peak_rss_kb: Option<u64>,
    pub failed: bool,
    pub note: String,
}

impl Row {
    pub fn measured(scenario: &str, unit: Unit, mut out: LoopOut, usage: Usage) -> Row {
        let p = percentiles(&mut out.latencies);
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let (throughput, unit_name) = match unit {
            Unit::Bytes => (out.bytes as f64 / 1e6 / secs, "MB/s"),
            Unit::Requests => (out.ok as f64 / secs, "req/s"),
            Unit::Images => (out.ok as f64 / secs, "images/s"),
            Unit::Ops => (out.ok as f64 / secs, "ops/s"),
        };
        let (per, per_unit) = match unit {
            Unit::Bytes => (out.bytes as f64 / 1e9, "GB"),
            _ => (out.requests as f64 / 1000.0, "1k req"),
        };
        let failed = out.errors > 0 || out.ok == 0;
        let note = match (&out.first_error, out.ok) {
            (Some(e), _) => format!("{} errors, first: {e}", out.errors),
            (None, 0) => "no operation completed".to_string(),
            _ => String::new(),
        };
        Row {
            scenario: scenario.to_string(),
            ok: out.ok,
            errors: out.errors,
            requests: out.requests,
            bytes: out.bytes,
            elapsed_s: secs,
            throughput,
            unit: unit_name.to_string(),
            p50_ms: p.p50,
            p90_ms: p.p90,
            p99_ms: p.p99,
            max_ms: p.max,
            cpu_s: usage.cpu_s,
            cpu_per: usage.cpu_s.filter(|_| per > 0.0).map(|c| c / per),
            cpu_per_unit: per_unit.to_string(),
            peak_rss_kb: usage.peak_rss_kb,
            failed,
            note,
        }
    }

    /// A phase that could not run (for example, its setup failed).
    pub fn failed(scenario: &str, note: String) -> Row {
        let mut r = Row::measured(scenario, Unit::Requests, LoopOut::default(), Usage::default());
        r.note = note;
        r
    }

    pub fn with_note(mut self, extra: String) -> Row {
        if !extra.is_empty() {
            if !self.note.is_empty() {
                self.note.push_str("; ");
            }
            self.note.push_str(&extra);
        }
        self
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub url: String,
    pub quick: bool,
    pub idle_rss_kb: Option<u64>,
    pub rows: Vec<Row>,
}

/// Three significant digits.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        let digits = (2 - a.log10().floor() as i32).clamp(3, 6) as usize;
        format!("{x:.digits$}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn mib(kb: Option<u64>) -> String {
    kb.map(|k| num(k as f64 / 1024.0)).unwrap_or_default()
}

fn cell(s: &str) -> String {
    let s: String = s.chars().take(160).collect();
    s.replace('|', "\\|").replace('\n', " ")
}

fn result(r: &Row) -> String {
    match (r.failed, r.note.is_empty()) {
        (true, _) => format!("**FAILED** {}", cell(&r.note)),
        (false, true) => "ok".to_string(),
        (false, false) => format!("ok ({})", cell(&r.note)),
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        if let Some(kb) = self.idle_rss_kb {
            s += &format!("Server idle RSS before the first scenario: {} MiB\n\n", mib(Some(kb)));
        }
        s += "| scenario | ok | errors | throughput | p50 ms | p90 ms | p99 ms | max ms | server CPU s | server CPU s per unit | peak RSS MiB | result |\n";
        s += "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {} | {} {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.scenario,
                r.ok,
                r.errors,
                num(r.throughput),
                r.unit,
                num(r.p50_ms),
                num(r.p90_ms),
                num(r.p99_ms),
                num(r.max_ms),
                opt(r.cpu_s),
                r.cpu_per.map(|c| format!("{} /{}", num(c), r.cpu_per_unit)).unwrap_or_default(),
                mib(r.peak_rss_kb),
                result(r),
            );
        }
        s
    }

    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(|r| r.failed)
    }
}

fn ok(r: &Row) -> Option<&Row> {
    (!r.failed).then_some(r)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a > 0.0 => format!("{}×", num(a / b)),
        _ => String::new(),
    }
}

/// Side-by-side table of two reports; ratios are `a / b`.
pub fn compare(a: &Report, b: &Report, an: &str, bn: &str) -> String {
    let mut s = String::new();
    s += &format!("Idle RSS: {an} {} MiB, {bn} {} MiB.\n\n", mib(a.idle_rss_kb), mib(b.idle_rss_kb));
    s += &format!(
        "| scenario | {an} | {bn} | {an}/{bn} | p99 ms {an} | p99 ms {bn} | CPU s/unit {an} | CPU s/unit {bn} | CPU {an}/{bn} | peak RSS MiB {an} | peak RSS MiB {bn} |\n"
    );
    s += "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for ra in &a.rows {
        let Some(rb) = b.rows.iter().find(|r| r.scenario == ra.scenario) else {
            continue;
        };
        let tp = |r: &Row| {
            if r.failed { "FAILED".to_string() } else { format!("{} {}", num(r.throughput), r.unit) }
        };
        let cpu = |r: &Row| r.cpu_per.map(|c| format!("{} /{}", num(c), r.cpu_per_unit)).unwrap_or_default();
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            ra.scenario,
            tp(ra),
            tp(rb),
            ratio(ok(ra).map(|r| r.throughput), ok(rb).map(|r| r.throughput)),
            ok(ra).map(|r| num(r.p99_ms)).unwrap_or_default(),
            ok(rb).map(|r| num(r.p99_ms)).unwrap_or_default(),
            cpu(ra),
            cpu(rb),
            ratio(ok(ra).and_then(|r| r.cpu_per), ok(rb).and_then(|r| r.cpu_per)),
            mib(ra.peak_rss_kb),
            mib(rb.peak_rss_kb),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn formats() {
        assert_eq!(num(1234.4), "1234");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(0.01234), "0.0123");
        assert_eq!(num(0.0), "0");
    }
}
