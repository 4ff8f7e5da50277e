//! `clock`: the probe's clock compared with the runner's, and the kernel's NTP verdict.
//!
//! The script carries the runner's time when it was written and the probe prints its own; the
//! runner's time when the output is evaluated closes the window. The probe's clock is in step
//! when its time falls inside that window, widened by `max-offset` on both sides, so a slow
//! exec never makes a good clock fail.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{all_errors, Assert, Outcome};
use crate::suites::model::ClockCheck;
use crate::transport::ExecOutput;

/// The offset allowed when a check names none.
const DEFAULT_MAX_OFFSET: Duration = Duration::from_secs(5);

fn runner_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub(super) fn script(checks: &[&ClockCheck], _timeout: Duration) -> String {
    let mut s = format!("echo runner {:.3}; echo probe $(date +%s.%N)", runner_now());
    if checks.iter().any(|c| c.synchronized.is_some()) {
        s.push_str(
            "; echo ntp $(timedatectl show -p NTPSynchronized --value 2>/dev/null || echo unknown)",
        );
    }
    s
}

/// The value after `key ` on its line.
fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .map(str::trim)
}

/// Seconds since the epoch; a `date` without `%N` support leaves a non-digit fraction.
fn seconds(text: &str) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: f64 = whole.parse().ok()?;
    let fraction = if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) {
        format!("0.{fraction}").parse().unwrap_or(0.0)
    } else {
        0.0
    };
    Some(whole + fraction)
}

pub(super) fn evaluate(checks: &[&ClockCheck], out: &ExecOutput) -> Vec<Outcome> {
    evaluate_at(checks, out, runner_now())
}

/// The verdicts, with `now` the runner's time after the exec returned.
fn evaluate_at(checks: &[&ClockCheck], out: &ExecOutput, now: f64) -> Vec<Outcome> {
    let (Some(start), Some(probe)) = (
        field(&out.stdout, "runner").and_then(seconds),
        field(&out.stdout, "probe").and_then(seconds),
    ) else {
        return all_errors(checks.len(), "could not read the probe's clock", out);
    };
    // How far the probe's time lies outside the window in which it was read.
    let offset = if probe < start {
        probe - start
    } else if probe > now {
        probe - now
    } else {
        0.0
    };
    let ntp = field(&out.stdout, "ntp").unwrap_or("unknown");
    let output = format!(
        "probe {probe:.3}, runner between {start:.3} and {now:.3}; NTP synchronised: {ntp}"
    );
    checks
        .iter()
        .map(|c| {
            let max = c.max_offset.map_or(DEFAULT_MAX_OFFSET, |d| d.0);
            let mut a = Assert::new("clock");
            a.row(
                "offset from the runner",
                &format!("at most {}s", max.as_secs_f64()),
                &format!("{offset:+.1}s"),
                offset.abs() <= max.as_secs_f64(),
            );
            if let Some(expected) = c.synchronized {
                let actual = match ntp {
                    "yes" => true,
                    "no" => false,
                    _ => {
                        return Outcome::error(
                            "cannot tell whether the clock is NTP-synchronised: `timedatectl show` gave no answer (needs systemd)",
                            &output,
                        )
                    }
                };
                a.flag("synchronized", expected, actual);
            }
            a.finish(output.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::result::Status;

    fn out(stdout: &str) -> ExecOutput {
        ExecOutput {
            exit_code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
            duration: Duration::from_millis(300),
        }
    }

    fn check(yaml: &str) -> ClockCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_probe_clock_is_judged_against_the_exec_window() {
        let (default, strict) = (check("{}"), check("{max-offset: 2s}"));
        let checks = [&default, &strict];
        let inside = evaluate_at(&checks, &out("runner 1000.0\nprobe 1000.4\n"), 1000.5);
        assert!(inside.iter().all(|o| o.status == Status::Passed));
        assert_eq!(
            inside[0].actual.as_deref(),
            Some("offset from the runner: +0.0s")
        );
        // 3 s ahead of the window: within the default 5 s, not within 2 s.
        let ahead = evaluate_at(&checks, &out("runner 1000.0\nprobe 1003.5\n"), 1000.5);
        assert_eq!(ahead[0].status, Status::Passed);
        assert_eq!(ahead[1].status, Status::Failed);
        assert_eq!(
            ahead[1].message,
            "clock: offset from the runner: expected at most 2s, got +3.0s"
        );
        let behind = evaluate_at(&checks, &out("runner 1000.0\nprobe 900\n"), 1000.5);
        assert_eq!(behind[0].status, Status::Failed);
        assert_eq!(
            behind[0].actual.as_deref(),
            Some("offset from the runner: -100.0s")
        );
    }

    #[test]
    fn ntp_verdict_and_unreadable_output() {
        let sync = check("{synchronized: true}");
        let no = evaluate_at(&[&sync], &out("runner 5\nprobe 5\nntp no\n"), 5.0);
        assert_eq!(no[0].status, Status::Failed);
        assert!(no[0]
            .message
            .contains("synchronized: expected true, got false"));
        let yes = evaluate_at(&[&sync], &out("runner 5\nprobe 5.%N\nntp yes\n"), 5.0);
        assert_eq!(yes[0].status, Status::Passed);
        let unknown = evaluate_at(&[&sync], &out("runner 5\nprobe 5\nntp unknown\n"), 5.0);
        assert_eq!(unknown[0].status, Status::Error);
        let garbled = evaluate_at(&[&sync], &out("sh: date: not found\n"), 5.0);
        assert_eq!(garbled[0].status, Status::Error);
    }

    #[test]
    fn the_script_asks_for_ntp_only_when_a_check_does() {
        let plain = check("{}");
        assert!(!script(&[&plain], Duration::ZERO).contains("timedatectl"));
        let sync = check("{synchronized: false}");
        assert!(script(&[&plain, &sync], Duration::ZERO).contains("timedatectl"));
    }
}
