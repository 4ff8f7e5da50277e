//! Collects the comparisons made for one check and turns them into a verdict with
//! "expected X, got Y" wording.

use serde_json::Value;

use crate::suites::matcher::{text, Matcher};
use crate::suites::result::Status;

/// The most characters of a value quoted in a message; the full value goes to `output`.
const SHOWN: usize = 200;

/// What evaluating one check gave, before the runner adds id, timing and attempts.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub status: Status,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub message: String,
    pub output: String,
}

impl Outcome {
    /// The check could not be evaluated.
    pub fn error(message: &str, output: &str) -> Self {
        Outcome {
            status: Status::Error,
            expected: None,
            actual: None,
            message: message.to_string(),
            output: output.to_string(),
        }
    }
}

struct Row {
    attr: String,
    expected: String,
    actual: String,
    ok: bool,
    /// The expectation itself could not be used (an invalid matcher read from a Goss file).
    invalid: bool,
}

/// The comparisons of one check.
pub(crate) struct Assert {
    subject: String,
    rows: Vec<Row>,
}

impl Assert {
    /// Starts the comparisons for `subject` ("service ssh", "file /etc/passwd").
    pub fn new(subject: impl Into<String>) -> Self {
        Assert {
            subject: subject.into(),
            rows: Vec::new(),
        }
    }

    /// Compares `actual` with `m`.
    pub fn matcher(&mut self, attr: &str, m: &Matcher, actual: &Value) {
        self.rows.push(Row {
            attr: attr.to_string(),
            expected: m.to_string(),
            actual: shorten(&text(actual)),
            ok: m.matches(actual),
            invalid: matches!(m, Matcher::Invalid(_)),
        });
    }

    /// Compares `actual` with `m` when the check has an expectation for `attr`.
    pub fn opt(&mut self, attr: &str, m: &Option<Matcher>, actual: impl FnOnce() -> Value) {
        if let Some(m) = m {
            self.matcher(attr, m, &actual());
        }
    }

    /// Compares a yes/no attribute.
    pub fn flag(&mut self, attr: &str, expected: bool, actual: bool) {
        self.rows.push(Row {
            attr: attr.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
            ok: expected == actual,
            invalid: false,
        });
    }

    /// Compares a yes/no attribute with its expectation: a matcher (`true`, `false`, or one such
    /// as `{or: [true, false]}`), or `default` when the check has none.
    pub fn flag_matcher(&mut self, attr: &str, m: &Option<Matcher>, default: bool, actual: bool) {
        match m {
            Some(m) => self.matcher(attr, m, &Value::Bool(actual)),
            None => self.flag(attr, default, actual),
        }
    }

    /// Records a comparison made by the caller.
    pub fn row(&mut self, attr: &str, expected: &str, actual: &str, ok: bool) {
        self.rows.push(Row {
            attr: attr.to_string(),
            expected: expected.to_string(),
            actual: shorten(actual),
            ok,
            invalid: false,
        });
    }

    /// Whether every comparison so far held.
    pub fn ok(&self) -> bool {
        self.rows.iter().all(|r| r.ok)
    }

    /// The verdict: failed when any comparison did not hold, naming only those.
    pub fn finish(self, output: String) -> Outcome {
        let failed: Vec<&Row> = self.rows.iter().filter(|r| !r.ok).collect();
        let shown: Vec<&Row> = if failed.is_empty() {
            self.rows.iter().collect()
        } else {
            failed.clone()
        };
        let join =
            |f: &dyn Fn(&Row) -> String| shown.iter().map(|r| f(r)).collect::<Vec<_>>().join("; ");
        let expected = join(&|r| format!("{}: {}", r.attr, r.expected));
        let actual = join(&|r| format!("{}: {}", r.attr, r.actual));
        let message = if failed.is_empty() {
            format!("{}: {}", self.subject, expected)
        } else {
            let what = join(&|r| format!("{}: expected {}, got {}", r.attr, r.expected, r.actual));
            format!("{}: {}", self.subject, what)
        };
        Outcome {
            status: if self.rows.iter().any(|r| r.invalid) {
                Status::Error
            } else if failed.is_empty() {
                Status::Passed
            } else {
                Status::Failed
            },
            expected: (!shown.is_empty()).then_some(expected),
            actual: (!shown.is_empty()).then_some(actual),
            message,
            output,
        }
    }
}

/// A value cut to a readable length for messages.
pub(crate) fn shorten(s: &str) -> String {
    let one_line = s.trim_end();
    if one_line.chars().count() <= SHOWN {
        return one_line.to_string();
    }
    let cut: String = one_line.chars().take(SHOWN).collect();
    format!("{cut}… ({} bytes)", s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failure_names_only_the_attributes_that_failed() {
        let mut a = Assert::new("service ssh");
        a.flag("running", true, true);
        a.flag("enabled", true, false);
        let o = a.finish(String::new());
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.expected.as_deref(), Some("enabled: true"));
        assert_eq!(o.actual.as_deref(), Some("enabled: false"));
        assert_eq!(o.message, "service ssh: enabled: expected true, got false");
    }

    #[test]
    fn pass_lists_every_attribute() {
        let mut a = Assert::new("file /etc");
        a.matcher("mode", &Matcher::equal("0755"), &json!("0755"));
        a.opt("owner", &None, || unreachable!());
        let o = a.finish("out".into());
        assert_eq!(o.status, Status::Passed);
        assert_eq!(o.message, "file /etc: mode: \"0755\"");
    }

    #[test]
    fn long_values_are_shortened() {
        let s = "x".repeat(1000);
        assert!(shorten(&s).ends_with("… (1000 bytes)"));
    }
}
