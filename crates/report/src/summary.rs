//! The end-of-scan summary and clamscan's way of writing it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aether_scan::Stats;

/// Everything the summary block shows.
#[derive(Debug, Clone)]
pub struct Summary<'a> {
    /// The counts.
    pub stats: &'a Stats,
    /// Signatures loaded ("Known viruses").
    pub known_viruses: u64,
    /// aether's version ("Engine version").
    pub engine_version: &'a str,
    /// When the scan started (after the database was loaded, as clamscan).
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Measured with a monotonic clock.
    pub elapsed: Duration,
    /// The exit code the scan will end with.
    pub exit_code: i32,
}

impl Summary<'_> {
    /// The block clamscan prints, starting with its blank line.
    pub fn clamscan_text(&self) -> String {
        let s = self.stats;
        let mut out = String::with_capacity(512);
        out.push_str("\n----------- SCAN SUMMARY -----------\n");
        out.push_str(&format!("Known viruses: {}\n", self.known_viruses));
        out.push_str(&format!("Engine version: {}\n", self.engine_version));
        out.push_str(&format!("Scanned directories: {}\n", s.directories));
        out.push_str(&format!("Scanned files: {}\n", s.files));
        out.push_str(&format!("Infected files: {}\n", s.infected));
        if s.errors > 0 {
            out.push_str(&format!("Total errors: {}\n", s.errors));
        }
        out.push_str(&format!("Data scanned: {:.2} MB\n", s.mb_scanned()));
        out.push_str(&format!(
            "Data read: {:.2} MB (ratio {:.2}:1)\n",
            s.mb_read(),
            s.ratio()
        ));
        let secs = self.elapsed.as_secs();
        out.push_str(&format!(
            "Time: {}.{:03} sec ({} m {} s)\n",
            secs,
            self.elapsed.subsec_millis(),
            secs / 60,
            secs % 60
        ));
        out.push_str(&format!("Start Date: {}\n", clamscan_date(self.start)));
        out.push_str(&format!("End Date:   {}\n", clamscan_date(self.end)));
        out
    }
}

/// `%Y:%m:%d %H:%M:%S` in local time, as clamscan's `strftime`.
pub(crate) fn clamscan_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tm = local_time(secs as libc::time_t);
    format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// RFC 3339 in UTC, for JSON.
pub(crate) fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn local_time(secs: libc::time_t) -> libc::tm {
    // SAFETY: `tm` is plain old data for which all-zero is a valid value, and
    // localtime_r only writes into the struct we pass. On failure it leaves
    // the zeroed struct, which prints as a recognizably wrong date.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_block_matches_clamscan_shape() {
        let stats = Stats {
            directories: 3,
            files: 4,
            infected: 3,
            blocks_scanned: 1360,
            blocks_read: 978,
            ..Stats::default()
        };
        let summary = Summary {
            stats: &stats,
            known_viruses: 2,
            engine_version: "0.1.0",
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            elapsed: Duration::from_millis(61_007),
            exit_code: 1,
        };
        let text = summary.clamscan_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(lines[1], "----------- SCAN SUMMARY -----------");
        assert_eq!(lines[2], "Known viruses: 2");
        assert_eq!(lines[3], "Engine version: 0.1.0");
        assert_eq!(lines[4], "Scanned directories: 3");
        assert_eq!(lines[5], "Scanned files: 4");
        assert_eq!(lines[6], "Infected files: 3");
        // No "Total errors" line without errors, as clamscan.
        assert_eq!(lines[7], "Data scanned: 5.31 MB");
        assert_eq!(lines[8], "Data read: 3.82 MB (ratio 1.39:1)");
        assert_eq!(lines[9], "Time: 61.007 sec (1 m 1 s)");
        assert!(lines[10].starts_with("Start Date: "));
        assert!(lines[11].starts_with("End Date:   "));
        assert_eq!(lines.len(), 12);

        let with_errors = Stats {
            errors: 2,
            ..stats.clone()
        };
        let text = Summary {
            stats: &with_errors,
            ..summary
        }
        .clamscan_text();
        assert!(text.contains("Infected files: 3\nTotal errors: 2\nData scanned"));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_758_092_123);
        assert_eq!(rfc3339_utc(t), "2026-11-27T05:41:32.123Z");
        let local = clamscan_date(t);
        assert_eq!(local.len(), "2026:11:27 05:41:32".len());
        assert_eq!(&local[4..5], ":");
    }
}
