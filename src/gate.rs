//! The gate: turns suite results into a pass/fail verdict with reasons. Pure; no I/O.

use serde::Serialize;

use crate::suites::{Status, SuiteResult};

/// Whether the image may be promoted, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// True only when at least one check ran and none failed or errored.
    pub passed: bool,
    /// One line per failed or errored check, or why nothing counted; empty when passed.
    pub reasons: Vec<String>,
}

/// Fails on any failed or errored check, and when no check ran at all (skips do not count).
pub fn evaluate(results: &[SuiteResult]) -> Verdict {
    let mut reasons = Vec::new();
    let mut ran = 0;
    for sr in results {
        let on = if sr.probe.is_empty() {
            String::new()
        } else {
            format!(" on {}", sr.probe)
        };
        for r in &sr.results {
            match r.status {
                Status::Passed => ran += 1,
                Status::Skipped => {}
                Status::Failed => {
                    ran += 1;
                    reasons.push(format!("{}/{} failed{on}: {}", sr.suite, r.id, r.message));
                }
                Status::Error => {
                    ran += 1;
                    reasons.push(format!(
                        "{}/{} could not be evaluated{on}: {}",
                        sr.suite, r.id, r.message
                    ));
                }
            }
        }
    }
    if ran == 0 {
        reasons.push(if results.is_empty() {
            "no suite ran; a gate needs at least one check".to_string()
        } else {
            "no check ran (all were filtered out or skipped); a gate needs at least one".to_string()
        });
    }
    Verdict {
        passed: reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::CheckResult;
    use std::time::Duration;

    fn check(id: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: id.into(),
            kind: "command".into(),
            tags: vec![],
            status,
            expected: None,
            actual: None,
            message: format!("{id} message"),
            output: String::new(),
            duration: Duration::ZERO,
            attempts: 1,
            experiment: None,
        }
    }

    fn suite(results: Vec<CheckResult>) -> SuiteResult {
        SuiteResult {
            suite: "smoke".into(),
            probe: "vm-1".into(),
            results,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn passes_when_everything_that_ran_passed() {
        let v = evaluate(&[suite(vec![
            check("a", Status::Passed),
            check("b", Status::Skipped),
        ])]);
        assert_eq!(
            v,
            Verdict {
                passed: true,
                reasons: vec![]
            }
        );
    }

    #[test]
    fn fails_on_failures_and_errors_naming_each() {
        let v = evaluate(&[suite(vec![
            check("a", Status::Failed),
            check("b", Status::Error),
            check("c", Status::Passed),
        ])]);
        assert!(!v.passed);
        assert_eq!(
            v.reasons,
            vec![
                "smoke/a failed on vm-1: a message",
                "smoke/b could not be evaluated on vm-1: b message"
            ]
        );
    }

    #[test]
    fn fails_when_nothing_ran() {
        assert!(!evaluate(&[]).passed);
        let v = evaluate(&[suite(vec![check("a", Status::Skipped)])]);
        assert!(!v.passed);
        assert!(v.reasons[0].contains("no check ran"));
    }
}
