//! `matching`: a value from the suite itself checked against a matcher; the probe is not asked.

use std::time::Duration;

use super::{Assert, Outcome};
use crate::suites::model::MatchingCheck;
use crate::transport::ExecOutput;

pub(super) fn script(_checks: &[&MatchingCheck], _timeout: Duration) -> String {
    String::new()
}

pub(super) fn evaluate(checks: &[&MatchingCheck], _out: &ExecOutput) -> Vec<Outcome> {
    checks.iter().map(|c| evaluate_one(c)).collect()
}

/// Compares the content with the matcher.
pub(super) fn evaluate_one(c: &MatchingCheck) -> Outcome {
    let mut a = Assert::new("matching");
    a.matcher("content", &c.matches, &c.content);
    a.finish(c.content.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::result::Status;

    #[test]
    fn content_is_matched_locally() {
        let c: MatchingCheck = serde_yaml::from_str(
            "{content: [foo, bar, moo], matches: {consist-of: [foo, {have-prefix: m}, bar]}}",
        )
        .unwrap();
        assert_eq!(evaluate_one(&c).status, Status::Passed);
        let c: MatchingCheck = serde_yaml::from_str("{content: '42', matches: {gt: 50}}").unwrap();
        assert_eq!(
            evaluate_one(&c).message,
            "matching: content: expected > 50, got 42"
        );
    }
}
