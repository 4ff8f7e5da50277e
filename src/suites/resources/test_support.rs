//! Helpers for the resource modules' tests: checks from YAML, evaluated against captured output.

use super::Outcome;
use crate::transport::ExecOutput;

/// Parses each YAML text as a check of one resource type.
pub(super) fn parse_all<C: serde::de::DeserializeOwned>(yamls: &[&str]) -> Vec<C> {
    yamls
        .iter()
        .map(|y| serde_yaml::from_str(y).unwrap_or_else(|e| panic!("{y}: {e}")))
        .collect()
}

/// What a gather or command left: its exit status and output.
pub(super) fn output(exit_code: i32, stdout: &str, stderr: &str) -> ExecOutput {
    ExecOutput {
        exit_code,
        stdout: stdout.into(),
        stderr: stderr.into(),
        ..Default::default()
    }
}

/// Evaluates `checks` with a resource's `evaluate` against what a gather left.
pub(super) fn evaluate_output<C>(
    evaluate: fn(&[&C], &ExecOutput) -> Vec<Outcome>,
    checks: &[C],
    out: &ExecOutput,
) -> Vec<Outcome> {
    let refs: Vec<&C> = checks.iter().collect();
    evaluate(&refs, out)
}

/// Evaluates `checks` against a gather that succeeded and printed `stdout`.
pub(super) fn evaluate_stdout<C>(
    evaluate: fn(&[&C], &ExecOutput) -> Vec<Outcome>,
    checks: &[C],
    stdout: &str,
) -> Vec<Outcome> {
    evaluate_output(evaluate, checks, &output(0, stdout, ""))
}
