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
    let content = if c.as_reader {
        serde_json::Value::String(go_text(&c.content))
    } else {
        c.content.clone()
    };
    a.matcher("content", &c.matches, &content);
    a.finish(c.content.to_string())
}

/// A value as Go's `fmt` prints it with `%v` (what Goss reads with `as-reader`).
fn go_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_text(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
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

    #[test]
    fn as_reader_matches_the_content_as_text() {
        let c: MatchingCheck =
            serde_yaml::from_str("{content: \"line one\\nline two\", as-reader: true, matches: [\"/^line t/\", \"!three\"]}")
                .unwrap();
        assert_eq!(evaluate_one(&c).status, Status::Passed);
        let c: MatchingCheck =
            serde_yaml::from_str("{content: [a, 1], as-reader: true, matches: \"[a 1]\"}").unwrap();
        assert_eq!(
            evaluate_one(&c).status,
            Status::Passed,
            "{}",
            evaluate_one(&c).message
        );
        let c: MatchingCheck =
            serde_yaml::from_str("{content: [a, 1], matches: \"[a 1]\"}").unwrap();
        assert_eq!(evaluate_one(&c).status, Status::Failed);
    }
}
