//! Human summaries: a plain-text table for terminals and a Markdown one for GitHub.

use std::fmt::Write;

use crate::gate;
use crate::suites::{CheckResult, Status, SuiteResult};

/// The widest a detail column gets in the terminal table.
const DETAIL_WIDTH: usize = 100;

/// A plain-text table, one row per check, then a totals line per suite and the verdict.
pub fn table(results: &[SuiteResult]) -> String {
    let mut s = String::new();
    for sr in results {
        let id_width = sr
            .results
            .iter()
            .map(|r| r.id.chars().count())
            .max()
            .unwrap_or(2)
            .max(2);
        let _ = writeln!(s, "{}{}", sr.suite, on(&sr.probe));
        let _ = writeln!(s, "  {:<7}  {:<id_width$}  DETAILS", "STATUS", "ID");
        for r in &sr.results {
            let _ = writeln!(
                s,
                "  {:<7}  {:<id_width$}  {}",
                label(r.status),
                r.id,
                clip(&detail(r), DETAIL_WIDTH)
            );
        }
        let _ = writeln!(s, "  {}\n", totals(sr));
    }
    let v = gate::evaluate(results);
    let _ = writeln!(s, "{}", if v.passed { "PASSED" } else { "FAILED" });
    s
}

/// A Markdown table of the same, for a job summary or a check run.
pub fn markdown(results: &[SuiteResult]) -> String {
    let mut s = String::new();
    for sr in results {
        let _ = writeln!(s, "### {}{}\n", md(&sr.suite), md(&on(&sr.probe)));
        let _ = writeln!(s, "{}\n", totals(sr));
        let _ = writeln!(s, "| | Check | Details |\n|---|---|---|");
        for r in &sr.results {
            let icon = match r.status {
                Status::Passed => "✅",
                Status::Failed => "❌",
                Status::Error => "⚠️",
                Status::Skipped => "⏭️",
            };
            let _ = writeln!(
                s,
                "| {icon} | {} | {} |",
                md_code(&r.id),
                md(&clip(&detail(r), 300))
            );
        }
        s.push('\n');
    }
    s
}

/// The detail column: the title when passed, "expected X, got Y" when failed, the reason otherwise.
pub fn detail(r: &CheckResult) -> String {
    if let Some(x) = &r.experiment {
        // An experiment: its verdict, then each phase and the time it took to recover.
        let recovered = x.time_to_recover_secs.map_or_else(
            || "not recovered".to_string(),
            |t| format!("recovered in {t:.1}s"),
        );
        let head = if r.status == Status::Passed {
            r.title.clone()
        } else {
            r.message.clone()
        };
        return format!("{head} [{}: {recovered}; {}]", x.fault, x.phases_line());
    }
    match (r.status, &r.expected, &r.actual) {
        (Status::Failed, Some(e), Some(a)) => format!("expected {e}, got {a}"),
        (Status::Passed, _, _) => r.title.clone(),
        _ => r.message.clone(),
    }
}

/// `3 passed, 1 failed, 0 errors, 1 skipped in 4.2s`.
pub fn totals(sr: &SuiteResult) -> String {
    format!(
        "{} passed, {} failed, {} errors, {} skipped in {:.1}s",
        sr.count(Status::Passed),
        sr.count(Status::Failed),
        sr.count(Status::Error),
        sr.count(Status::Skipped),
        sr.duration.as_secs_f64()
    )
}

fn label(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "FAILED",
        Status::Error => "ERROR",
        Status::Skipped => "skipped",
    }
}

fn on(probe: &str) -> String {
    if probe.is_empty() {
        String::new()
    } else {
        format!(" on {probe}")
    }
}

fn clip(s: &str, width: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= width && !s.contains('\n') {
        return line.to_string();
    }
    let cut: String = line.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Text for a Markdown table cell: Markdown and HTML have no effect (a guest's output stays
/// text), `|` cannot end the cell, and a line break becomes `<br>`.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => out.push_str("<br>"),
            '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A code span for a table cell, long enough a fence for any backticks inside.
pub fn md_code(s: &str) -> String {
    let text = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn result(
        id: &str,
        status: Status,
        expected: Option<&str>,
        actual: Option<&str>,
    ) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: format!("{id} title"),
            kind: "service".into(),
            tags: vec![],
            status,
            expected: expected.map(Into::into),
            actual: actual.map(Into::into),
            message: format!("{id}: message"),
            output: String::new(),
            duration: Duration::ZERO,
            attempts: 1,
            experiment: None,
        }
    }

    #[test]
    fn table_shows_expected_and_actual_for_failures() {
        let sr = SuiteResult {
            suite: "smoke".into(),
            probe: "vm-1".into(),
            results: vec![
                result(
                    "sshd",
                    Status::Passed,
                    Some("running: true"),
                    Some("running: true"),
                ),
                result(
                    "nginx-installed",
                    Status::Failed,
                    Some("installed: true"),
                    Some("installed: false"),
                ),
                result("index", Status::Error, None, None),
            ],
            duration: Duration::from_millis(4200),
        };
        let t = table(std::slice::from_ref(&sr));
        assert!(t.starts_with("smoke on vm-1\n"), "{t}");
        assert!(
            t.contains("  passed   sshd             sshd title\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "  FAILED   nginx-installed  expected installed: true, got installed: false\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("  ERROR    index            index: message\n"),
            "{t}"
        );
        assert!(
            t.contains("1 passed, 1 failed, 1 errors, 0 skipped in 4.2s"),
            "{t}"
        );
        assert!(t.ends_with("FAILED\n"), "{t}");
        let m = markdown(&[sr]);
        assert!(
            m.contains(
                "| ❌ | `nginx-installed` | expected installed: true, got installed: false |"
            ),
            "{m}"
        );
    }

    #[test]
    fn markdown_keeps_guest_output_as_text() {
        let sr = SuiteResult {
            suite: "web".into(),
            probe: String::new(),
            results: vec![result(
                "a|`b`",
                Status::Failed,
                Some("body: ok"),
                Some("<details><summary>x</summary> **bold** | [link](http://x) & more"),
            )],
            duration: Duration::ZERO,
        };
        let m = markdown(&[sr]);
        let row = m.lines().find(|l| l.starts_with("| ❌")).unwrap();
        assert_eq!(
            row,
            "| ❌ | `` a\\|`b` `` | expected body: ok, got &lt;details&gt;&lt;summary&gt;x&lt;/summary&gt; \\*\\*bold\\*\\* \\| \\[link\\](http://x) &amp; more |"
        );
    }
}
