//! `command`: run a command line and check its exit status and output.

use serde_json::Value;
use std::time::Duration;

use super::{Assert, Outcome};
use crate::suites::matcher::Matcher;
use crate::suites::model::CommandCheck;
use crate::transport::ExecOutput;

/// The distinct command lines of `checks`, in order.
fn lines<'a>(checks: &[&'a CommandCheck]) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for c in checks {
        if !v.contains(&c.run.as_str()) {
            v.push(&c.run);
        }
    }
    v
}

/// The script for `checks`: one command line (however many checks share it) is the script
/// itself. Several run one after the other in one exec, each as `sh -c` would (through
/// `eval` in a subshell of its own, stdin from /dev/null), its standard output streamed
/// between markers and its standard error and exit status reported after it; a syntax error
/// or an `exit` in one ends only that one.
pub(super) fn script(checks: &[&CommandCheck], _timeout: Duration) -> String {
    let lines = lines(checks);
    if lines.len() <= 1 {
        return lines.first().map(|l| l.to_string()).unwrap_or_default();
    }
    let m = super::marker();
    let mut s = String::from("exec 3>&1\n");
    for (i, line) in lines.iter().enumerate() {
        s += &format!(
            "printf '\\n%s cmd %s\\n' '{m}' {i}\n\
             e=$( {{ eval {}\n}} 2>&1 1>&3 3>&- </dev/null ); rc=$?\n\
             printf '\\n%s rc %s %s\\n' '{m}' {i} \"$rc\"\n\
             [ -z \"$e\" ] || printf '\\n%s err %s\\n%s\\n' '{m}' {i} \"$e\"\n",
            crate::transport::shell_quote(line)
        );
    }
    s + &super::end_section()
}

pub(super) fn evaluate(checks: &[&CommandCheck], out: &ExecOutput) -> Vec<Outcome> {
    let lines = lines(checks);
    if lines.len() <= 1 {
        return checks.iter().map(|c| evaluate_one(c, out)).collect();
    }
    evaluate_batch(checks, &lines, &out.stdout, None)
}

/// The checks of a batch whose exec failed part way (it timed out, the connection dropped):
/// the commands that finished are judged on their output, the others are errors.
pub(super) fn evaluate_cut(checks: &[&CommandCheck], stdout: &str, why: &str) -> Vec<Outcome> {
    let lines = lines(checks);
    evaluate_batch(checks, &lines, stdout, Some(why))
}

/// Whether `checks` run as a batch of several command lines.
pub(super) fn is_batch(checks: &[&CommandCheck]) -> bool {
    lines(checks).len() > 1
}

fn evaluate_batch(
    checks: &[&CommandCheck],
    lines: &[&str],
    stdout: &str,
    cut: Option<&str>,
) -> Vec<Outcome> {
    // Per command line: its stdout, stderr and exit status, as far as they were reported.
    let mut stdouts: Vec<Option<&str>> = vec![None; lines.len()];
    let mut stderrs: Vec<&str> = vec![""; lines.len()];
    let mut codes: Vec<Option<i32>> = vec![None; lines.len()];
    let mut ended = false;
    // A cut-off output has no end marker; `sections` wants one.
    let text = if cut.is_some() {
        format!("{stdout}{}", super::end_section_text())
    } else {
        stdout.to_string()
    };
    if let Some(parts) = super::sections(&text) {
        ended = cut.is_none();
        for (kind, arg, body) in parts {
            let mut words = arg.split_whitespace();
            let Some(i) = words
                .next()
                .and_then(|w| w.parse::<usize>().ok())
                .filter(|&i| i < lines.len())
            else {
                continue;
            };
            match kind {
                "cmd" => stdouts[i] = Some(body),
                "rc" => codes[i] = words.next().and_then(|w| w.parse().ok()),
                "err" => stderrs[i] = body.strip_suffix('\n').unwrap_or(body),
                _ => {}
            }
        }
    }
    checks
        .iter()
        .map(|c| {
            let i = lines.iter().position(|l| *l == c.run).unwrap_or(0);
            match (codes[i], stdouts[i]) {
                (Some(code), Some(out)) => evaluate_one(
                    c,
                    &ExecOutput {
                        exit_code: code,
                        stdout: out.to_string(),
                        stderr: stderrs[i].to_string(),
                        ..Default::default()
                    },
                ),
                _ => {
                    let why = match (cut, stdouts[i]) {
                        (Some(why), Some(_)) => format!("it did not finish: {why}"),
                        (Some(why), None) => format!(
                            "it did not start: a command run before it in the same exec did not \
                             finish ({why})"
                        ),
                        (None, _) if !ended => "the commands' output was cut off".to_string(),
                        (None, _) => "its exit status was not reported".to_string(),
                    };
                    Outcome::error(
                        &format!("could not evaluate command `{}`: {why}", c.run),
                        stdout,
                    )
                }
            }
        })
        .collect()
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

    fn refs(checks: &[CommandCheck]) -> Vec<&CommandCheck> {
        checks.iter().collect()
    }

    /// Several command lines in one exec, run for real by this host's `sh`: each is judged on
    /// its own output, status and standard error, whatever the others did.
    #[test]
    fn a_batch_runs_each_command_as_its_own() {
        use crate::suites::testing::LocalShell;
        use crate::transport::Transport;
        let checks: Vec<CommandCheck> = [
            "{run: 'echo one', stdout: one}",
            "{run: 'printf two', stdout: two}",
            "{run: 'echo oops >&2; exit 3', exit-status: 3, stderr: oops}",
            "{run: 'if then fi', exit-status: 0}",
            "{run: 'echo one', stdout: other}",
            "{run: 'cat; echo \"x y\" | tr x z', stdout: z y}",
            "{run: 'exit 5', exit-status: 5}",
        ]
        .iter()
        .map(|y| check(y))
        .collect();
        let r = refs(&checks);
        assert!(is_batch(&r));
        let s = script(&r, Duration::from_secs(10));
        // One `echo one` for the two checks that share it.
        assert_eq!(s.matches("eval 'echo one'").count(), 1);
        let out = (&LocalShell as &dyn Transport)
            .run(&s, Duration::from_secs(10))
            .unwrap();
        let o = evaluate(&r, &out);
        let st: Vec<Status> = o.iter().map(|o| o.status).collect();
        assert_eq!(
            st,
            [
                Status::Passed,
                Status::Passed,
                Status::Passed,
                Status::Failed,
                Status::Failed,
                Status::Passed,
                Status::Passed
            ],
            "{o:#?}"
        );
        // The syntax error is that command's own failure, with the shell's words.
        assert!(
            o[3].message.contains("exit-status: expected 0, got 2"),
            "{}",
            o[3].message
        );
        assert!(o[3].output.contains("--- stderr ---"), "{}", o[3].output);
        assert_eq!(
            o[4].message,
            "command `echo one`: stdout: expected \"other\", got one"
        );
        // A single command line is the script itself, as before.
        let one = [check("{run: 'uname -s'}")];
        assert_eq!(script(&refs(&one), Duration::from_secs(1)), "uname -s");
    }

    /// An exec cut off part way: what finished keeps its verdict, the rest are errors.
    #[test]
    fn a_cut_off_batch_keeps_what_finished() {
        let checks: Vec<CommandCheck> = [
            "{run: 'echo a', stdout: a}",
            "{run: 'sleep 9'}",
            "{run: 'echo c'}",
        ]
        .iter()
        .map(|y| check(y))
        .collect();
        let m = crate::suites::resources::marker();
        let seen = format!("\n{m} cmd 0\na\n\n{m} rc 0 0\n\n{m} cmd 1\n");
        let o = evaluate_cut(&refs(&checks), &seen, "timed out after 60s");
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Error);
        assert_eq!(
            o[1].message,
            "could not evaluate command `sleep 9`: it did not finish: timed out after 60s"
        );
        assert_eq!(o[2].status, Status::Error);
        assert!(
            o[2].message.contains("it did not start"),
            "{}",
            o[2].message
        );
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
