//! Resident memory and CPU time of a process, read from `/proc` (Linux).

use std::path::PathBuf;

/// Memory figures from `/proc/<pid>/status`, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Resident set size now.
    pub vm_rss_kib: u64,
    /// Peak resident set size since the process started.
    pub vm_hwm_kib: u64,
}

fn proc_path(pid: Option<u32>, file: &str) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/{file}")),
        None => PathBuf::from(format!("/proc/self/{file}")),
    }
}

/// `VmRSS` and `VmHWM` of `pid` (this process when `None`).
pub fn memory(pid: Option<u32>) -> Option<Memory> {
    let text = std::fs::read_to_string(proc_path(pid, "status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Memory {
        vm_rss_kib: field("VmRSS:")?,
        vm_hwm_kib: field("VmHWM:")?,
    })
}

/// User plus system CPU seconds `pid` (this process when `None`) has used.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let text = std::fs::read_to_string(proc_path(pid, "stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces): state is field 3,
    // utime field 14, stime field 15.
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on (the kernel's USER_HZ).
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests;
