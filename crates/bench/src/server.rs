//! Server-side resource accounting from /proc/PID: CPU seconds
//! (utime+stime), the peak-RSS high-water mark (reset through clear_refs)
//! and the current RSS.

use std::fs;

/// Watches the registry process, if its pid was given.
pub struct Server {
    pid: Option<u32>,
    tick: f64,
}

/// State captured when a measured phase starts.
pub struct Probe {
    cpu: Option<f64>,
}

/// What the server used during a measured phase.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub cpu_s: Option<f64>,
    pub peak_rss_kb: Option<u64>,
}

impl Server {
    pub fn new(pid: Option<u32>) -> Result<Self, String> {
        let s = Server { pid, tick: clock_ticks() };
        if let Some(p) = pid {
            if s.cpu_seconds().is_none() {
                return Err(format!("cannot read /proc/{p}/stat"));
            }
            fs::write(format!("/proc/{p}/clear_refs"), "5").map_err(|e| format!("cannot write /proc/{p}/clear_refs: {e}"))?;
        }
        Ok(s)
    }

    /// utime+stime of the process, in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the ")" closing the command name start at field 3.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = f.get(11)?.parse().ok()?;
        let stime: u64 = f.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 / self.tick)
    }

    fn status_kb(&self, key: &str) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix(':')?;
            v.split_whitespace().next()?.parse().ok()
        })
    }

    /// Current resident set size (VmRSS) in KiB.
    pub fn rss_kb(&self) -> Option<u64> {
        self.status_kb("VmRSS")
    }

    /// Before a measured loop on this machine: writes every dirty page back to the disk
    /// (sync(2)), so that no registry's writeback of what came before (setup, an earlier
    /// row) runs during the loop. A registry that writes back as it goes and one that leaves
    /// it to the kernel for later then both start the loop with nothing pending.
    pub async fn settle(&self) {
        if self.pid.is_some() {
            let _ = tokio::task::spawn_blocking(sync).await;
        }
    }

    /// Reset the RSS high-water mark and note the CPU time so far.
    pub fn begin(&self) -> Probe {
        if let Some(p) = self.pid {
            let _ = fs::write(format!("/proc/{p}/clear_refs"), "5");
        }
        Probe { cpu: self.cpu_seconds() }
    }

    /// CPU used since `begin` and the peak RSS (VmHWM) reached meanwhile.
    pub fn end(&self, probe: Probe) -> Usage {
        Usage {
            cpu_s: match (probe.cpu, self.cpu_seconds()) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            peak_rss_kb: self.status_kb("VmHWM"),
        }
    }
}

#[allow(unsafe_code)]
fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() }
}

#[allow(unsafe_code)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
