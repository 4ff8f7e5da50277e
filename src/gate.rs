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

/// Passed controls over applicable ones, for a benchmark suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Controls that passed (attested passes included).
    pub passed: usize,
    /// Controls whose verdict counts: passed, failed, error and waived. Not-applicable,
    /// not-reviewed and skipped (excluded) controls do not.
    pub applicable: usize,
    /// `passed / applicable` in percent (100 when nothing is applicable).
    pub percent: f64,
}

impl Score {
    fn of<'a>(results: impl Iterator<Item = &'a crate::suites::CheckResult>) -> Score {
        let (mut passed, mut applicable) = (0, 0);
        for r in results {
            match r.status {
                Status::Passed => {
                    passed += 1;
                    applicable += 1
                }
                Status::Failed | Status::Error | Status::Waived => applicable += 1,
                Status::Skipped | Status::NotApplicable | Status::NotReviewed => {}
            }
        }
        let percent = if applicable == 0 {
            100.0
        } else {
            (passed as f64 * 1000.0 / applicable as f64).round() / 10.0
        };
        Score {
            passed,
            applicable,
            percent,
        }
    }
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}% ({}/{})",
            self.percent, self.passed, self.applicable
        )
    }
}

/// A benchmark suite's score, overall and per top-level section (in section order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    /// Over every control.
    pub overall: Score,
    /// Section number, title and score.
    pub sections: Vec<(String, String, Score)>,
}

/// The scorecard of a benchmark suite; `None` for other suites.
pub fn scorecard(sr: &SuiteResult) -> Option<Scorecard> {
    let b = sr.benchmark.as_ref()?;
    let section_of = |r: &crate::suites::CheckResult| {
        r.control
            .as_ref()
            .map(|c| c.section.clone())
            .unwrap_or_else(|| r.id.split('.').next().unwrap_or("").to_string())
    };
    let mut numbers: Vec<String> = sr.results.iter().map(section_of).collect();
    numbers.sort_by_key(|n| (n.parse::<u32>().unwrap_or(u32::MAX), n.clone()));
    numbers.dedup();
    let sections = numbers
        .into_iter()
        .map(|n| {
            let title = b.sections.get(&n).cloned().unwrap_or_default();
            let score = Score::of(sr.results.iter().filter(|r| section_of(r) == n));
            (n, title, score)
        })
        .collect();
    Some(Scorecard {
        overall: Score::of(sr.results.iter()),
        sections,
    })
}

/// Fails on any failed or errored check, and when no check ran at all (skips do not count).
///
/// Waived, not-applicable and not-reviewed results do not fail the gate. A benchmark suite
/// with `min-score` fails only when its score is below it; its failures are then listed as
/// the reasons.
pub fn evaluate(results: &[SuiteResult]) -> Verdict {
    let mut reasons = Vec::new();
    let mut ran = 0;
    for sr in results {
        let on = if sr.probe.is_empty() {
            String::new()
        } else {
            format!(" on {}", sr.probe)
        };
        let min_score = sr.benchmark.as_ref().and_then(|b| b.min_score);
        if let (Some(min), Some(card)) = (min_score, scorecard(sr)) {
            ran += card.overall.applicable;
            if card.overall.percent < min {
                reasons.push(format!(
                    "{} scored {}{on}, below its min-score of {min}%",
                    sr.suite, card.overall
                ));
            }
            continue;
        }
        for r in &sr.results {
            match r.status {
                Status::Passed | Status::Waived => ran += 1,
                Status::Skipped | Status::NotApplicable | Status::NotReviewed => {}
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
            control: None,
            experiment: None,
        }
    }

    fn suite(results: Vec<CheckResult>) -> SuiteResult {
        SuiteResult {
            suite: "smoke".into(),
            probe: "vm-1".into(),
            results,
            duration: Duration::ZERO,
            benchmark: None,
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

    fn benchmark(min_score: Option<f64>) -> crate::suites::result::BenchmarkRun {
        crate::suites::result::BenchmarkRun {
            id: "debian-12".into(),
            title: "CIS Debian Linux 12 Benchmark v1.1.0".into(),
            profile: "level-1-server".into(),
            sections: [
                ("1".to_string(), "Initial Setup".to_string()),
                ("5".into(), "Access Control".into()),
            ]
            .into_iter()
            .collect(),
            min_score,
            notes: vec![],
        }
    }

    fn cis(results: Vec<CheckResult>, min_score: Option<f64>) -> SuiteResult {
        SuiteResult {
            suite: "cis-debian-12".into(),
            benchmark: Some(benchmark(min_score)),
            ..suite(results)
        }
    }

    #[test]
    fn new_states_do_not_fail_the_gate() {
        let v = evaluate(&[cis(
            vec![
                check("1.1.1", Status::Passed),
                check("1.1.2", Status::Waived),
                check("1.1.3", Status::NotApplicable),
                check("5.1.1", Status::NotReviewed),
                check("5.1.2", Status::Skipped),
            ],
            None,
        )]);
        assert!(v.passed, "{v:?}");
        let v = evaluate(&[cis(vec![check("5.1.3", Status::NotReviewed)], None)]);
        assert!(!v.passed, "a manual control alone is no evidence");
    }

    #[test]
    fn score_counts_applicable_controls_per_section() {
        let sr = cis(
            vec![
                check("1.1.1", Status::Passed),
                check("1.1.2", Status::Failed),
                check("1.1.3", Status::NotApplicable),
                check("5.1.1", Status::Passed),
                check("5.1.2", Status::Waived),
                check("5.1.3", Status::NotReviewed),
                check("5.1.4", Status::Error),
                check("5.1.5", Status::Skipped),
            ],
            None,
        );
        let card = scorecard(&sr).unwrap();
        assert_eq!(card.overall.to_string(), "40.0% (2/5)");
        assert_eq!(card.sections[0].0, "1");
        assert_eq!(card.sections[0].1, "Initial Setup");
        assert_eq!(card.sections[0].2.to_string(), "50.0% (1/2)");
        assert_eq!(card.sections[1].2.to_string(), "33.3% (1/3)");
        assert!(scorecard(&suite(vec![])).is_none());
    }

    #[test]
    fn min_score_phases_a_benchmark_in() {
        let results = vec![
            check("1.1.1", Status::Passed),
            check("1.1.2", Status::Passed),
            check("1.1.3", Status::Passed),
            check("5.1.1", Status::Failed),
        ];
        // Default: every applicable, unwaived, automated control must pass.
        let v = evaluate(&[cis(results.clone(), None)]);
        assert_eq!(
            v.reasons,
            vec!["cis-debian-12/5.1.1 failed on vm-1: 5.1.1 message"]
        );
        // 75% passes a min-score of 70 and fails one of 80.
        assert!(evaluate(&[cis(results.clone(), Some(70.0))]).passed);
        let v = evaluate(&[cis(results, Some(80.0))]);
        assert_eq!(
            v.reasons,
            vec!["cis-debian-12 scored 75.0% (3/4) on vm-1, below its min-score of 80%"]
        );
    }
}
