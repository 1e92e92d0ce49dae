//! What a broker process costs: CPU time and resident memory, read from `/proc`.
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (all threads of the process), in clock
//! ticks of `USER_HZ`, which Linux fixes at 100 per second on every architecture that matters
//! here; resolution is therefore 10 ms, fine for windows of seconds. Memory is `VmRSS` of
//! `/proc/<pid>/status`.

use std::io;

/// Clock ticks per second of `/proc/<pid>/stat` (Linux `USER_HZ`).
pub const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// One reading of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

impl ProcSample {
    /// CPU time in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ticks as f64 / CLOCK_TICKS_PER_SEC
    }
}

/// Reads process `pid`.
///
/// # Errors
/// An I/O error if the process does not exist (any more) or its files do not parse.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let bad = |what| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/{what}"));
    Ok(ProcSample {
        cpu_ticks: parse_stat_cpu_ticks(&stat).ok_or_else(|| bad("stat"))?,
        rss_bytes: parse_status_rss(&status).ok_or_else(|| bad("status"))?,
    })
}

/// Reads every process of `pids`, summed, and each one.
///
/// # Errors
/// The first process that cannot be read.
pub fn sample_all(pids: &[u32]) -> io::Result<(ProcSample, Vec<ProcSample>)> {
    let each = pids
        .iter()
        .map(|&p| sample(p))
        .collect::<io::Result<Vec<_>>>()?;
    let total = each.iter().fold(ProcSample::default(), |a, s| ProcSample {
        cpu_ticks: a.cpu_ticks + s.cpu_ticks,
        rss_bytes: a.rss_bytes + s.rss_bytes,
    });
    Ok((total, each))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th field of `rest`.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of a `/proc/<pid>/status` file, in bytes.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_ascii_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value * 1024),
        _ => None,
    }
}

/// The soft limit on open files of this process (`ulimit -n`), from `/proc/self/limits`;
/// `None` if unreadable or unlimited.
pub fn open_files_limit() -> Option<u64> {
    parse_open_files_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit of the `Max open files` line of a `/proc/<pid>/limits` file.
pub fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let stat = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 2000 0 0 0 \
                    250 75 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn parses_status_rss() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t   5120 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss(status), Some(5120 * 1024));
        assert_eq!(parse_status_rss("Name:\tkthread\n"), None);
    }

    #[test]
    fn parses_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             95000                95000                processes\n\
                      Max open files            20000                40000                files\n";
        assert_eq!(parse_open_files_limit(limits), Some(20_000));
        assert_eq!(
            parse_open_files_limit("Max open files  unlimited  unlimited  files\n"),
            None
        );
        assert!(open_files_limit().is_some());
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
        let (total, each) = sample_all(&[std::process::id(), std::process::id()]).unwrap();
        assert_eq!(each.len(), 2);
        assert!(total.rss_bytes >= 2 * s.rss_bytes / 2);
        assert!(sample(u32::MAX).is_err());
    }
}
