//! `process`: running processes by executable name, from one read of every `/proc/PID/comm`.

use std::time::Duration;

use serde_json::Value;

use super::{all_errors, Assert, Outcome};
use crate::suites::model::ProcessCheck;
use crate::transport::ExecOutput;

/// The kernel keeps at most this many bytes of an executable name in `comm`.
const COMM_LEN: usize = 15;

pub(super) fn script(_checks: &[&ProcessCheck], _timeout: Duration) -> String {
    "cat /proc/[0-9]*/comm 2>/dev/null; echo @end".into()
}

pub(super) fn evaluate(checks: &[&ProcessCheck], out: &ExecOutput) -> Vec<Outcome> {
    let Some(listing) = out.stdout.strip_suffix("@end\n").filter(|s| !s.is_empty()) else {
        return all_errors(checks.len(), "could not list the processes from /proc", out);
    };
    let comms: Vec<&str> = listing.lines().collect();
    checks
        .iter()
        .map(|c| {
            let wanted: String = truncate(&c.comm);
            let count = comms.iter().filter(|&&n| n == wanted).count();
            let mut a = Assert::new(format!("process {}", c.comm));
            a.flag_matcher("running", &c.running, true, count > 0);
            a.opt("count", &c.count, || Value::from(count));
            a.finish(format!("{count} processes named {wanted}"))
        })
        .collect()
}

fn truncate(name: &str) -> String {
    let mut end = name.len().min(COMM_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::test_support::{evaluate_stdout, parse_all};
    use crate::suites::result::Status;

    #[test]
    fn counts_processes_by_comm() {
        let checks: Vec<ProcessCheck> = parse_all(&[
            "{comm: sshd, count: 2}",
            "{comm: nginx}",
            "{comm: nginx, running: false}",
            "{comm: systemd-journald}",
        ]);
        let stdout = "systemd\nkthreadd\nsystemd-journal\nsshd\nsshd\ncat\n@end\n";
        let o = evaluate_stdout(evaluate, &checks, stdout);
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(
            o[1].message,
            "process nginx: running: expected true, got false"
        );
        assert_eq!(o[2].status, Status::Passed);
        assert_eq!(
            o[3].status,
            Status::Passed,
            "names are cut to 15 bytes like comm"
        );
        let o = evaluate_stdout(evaluate, &checks, "");
        assert_eq!(o[0].status, Status::Error);
    }
}
