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

/// Evaluates `checks` with a resource's `evaluate` against a gather that printed `stdout`.
pub(super) fn evaluate_stdout<C>(
    evaluate: fn(&[&C], &ExecOutput) -> Vec<Outcome>,
    checks: &[C],
    stdout: &str,
) -> Vec<Outcome> {
    let refs: Vec<&C> = checks.iter().collect();
    evaluate(
        &refs,
        &ExecOutput {
            stdout: stdout.into(),
            ..Default::default()
        },
    )
}
