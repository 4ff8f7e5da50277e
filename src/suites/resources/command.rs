//! `command`: run a command line and check its exit status and output.

use serde_json::Value;
use std::time::Duration;

use super::{Assert, Outcome};
use crate::suites::matcher::Matcher;
use crate::suites::model::CommandCheck;
use crate::transport::ExecOutput;

/// A command check is not batched: the script is the command itself.
pub(super) fn script(checks: &[&CommandCheck], _timeout: Duration) -> String {
    checks.first().map(|c| c.run.clone()).unwrap_or_default()
}

pub(super) fn evaluate(checks: &[&CommandCheck], out: &ExecOutput) -> Vec<Outcome> {
    checks.iter().map(|c| evaluate_one(c, out)).collect()
}

fn evaluate_one(c: &CommandCheck, out: &ExecOutput) -> Outcome {
    let mut a = Assert::new(format!("command `{}`", c.run));
    let zero = Matcher::equal(0);
    a.matcher(
        "exit-status",
        c.exit_status.as_ref().unwrap_or(&zero),
        &Value::from(out.exit_code),
    );
    a.opt("stdout", &c.stdout, || {
        Value::from(trim_newlines(&out.stdout))
    });
    a.opt("stderr", &c.stderr, || {
        Value::from(trim_newlines(&out.stderr))
    });
    a.finish(transcript(&c.run, out))
}

fn trim_newlines(s: &str) -> &str {
    s.trim_end_matches(['\n', '\r'])
}

/// The command, its exit status and both streams, as shown in reports.
pub(super) fn transcript(cmd: &str, out: &ExecOutput) -> String {
    let mut s = format!("$ {cmd}\nexit status {}\n", out.exit_code);
    if !out.stdout.is_empty() {
        s.push_str("--- stdout ---\n");
        s.push_str(&out.stdout);
        if !out.stdout.ends_with('\n') {
            s.push('\n');
        }
    }
    if !out.stderr.is_empty() {
        s.push_str("--- stderr ---\n");
        s.push_str(&out.stderr);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::test_support::output as out;
    use crate::suites::result::Status;

    fn check(yaml: &str) -> CommandCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn exit_status_defaults_to_zero() {
        let c = check("run: 'false'");
        let o = evaluate_one(&c, &out(1, "", ""));
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.message, "command `false`: exit-status: expected 0, got 1");
        assert_eq!(evaluate_one(&c, &out(0, "", "")).status, Status::Passed);
    }

    #[test]
    fn stdout_equality_ignores_the_final_newline() {
        let c = check("{run: 'uname -s', stdout: Linux, stderr: {not: {contains: error}}}");
        assert_eq!(
            evaluate_one(&c, &out(0, "Linux\n", "")).status,
            Status::Passed
        );
        let o = evaluate_one(&c, &out(0, "Darwin\n", "error: x"));
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.message.contains("stdout: expected \"Linux\", got Darwin"),
            "{}",
            o.message
        );
        assert!(o.output.contains("--- stderr ---\nerror: x"));
    }
}
