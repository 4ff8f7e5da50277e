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
        let _ = writeln!(s, "  {}", totals(sr));
        if let (Some(b), Some(card)) = (&sr.benchmark, gate::scorecard(sr)) {
            let _ = writeln!(
                s,
                "  {} ({}): score {}{}",
                b.title,
                b.profile,
                card.overall,
                b.min_score
                    .map(|m| format!(", min-score {m}%"))
                    .unwrap_or_default()
            );
            for (n, title, score) in &card.sections {
                let _ = writeln!(s, "    {n:<3} {title:<28} {score}");
            }
            for note in &b.notes {
                let _ = writeln!(s, "  note: {note}");
            }
        }
        s.push('\n');
    }
    let v = gate::evaluate(results);
    let _ = writeln!(s, "{}", if v.passed { "PASSED" } else { "FAILED" });
    s
}

/// A Markdown table of the same, for a job summary or a check run.
pub fn markdown(results: &[SuiteResult]) -> String {
    let mut s = String::new();
    for sr in results {
        if sr.benchmark.is_some() {
            s += &benchmark_markdown(sr);
            continue;
        }
        let _ = writeln!(s, "### {}{}\n", md(&sr.suite), md(&on(&sr.probe)));
        let _ = writeln!(s, "{}\n", totals(sr));
        let _ = writeln!(s, "| | Check | Details |\n|---|---|---|");
        for r in &sr.results {
            let icon = icon(r.status);
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

fn icon(s: Status) -> &'static str {
    match s {
        Status::Passed => "✅",
        Status::Failed => "❌",
        Status::Error => "⚠️",
        Status::Skipped => "⏭️",
        Status::NotApplicable => "➖",
        Status::NotReviewed => "📝",
        Status::Waived => "🏳️",
    }
}

/// The order controls are listed in within a section: what needs work first.
fn urgency(s: Status) -> u8 {
    match s {
        Status::Failed => 0,
        Status::Error => 1,
        Status::Waived => 2,
        Status::NotReviewed => 3,
        Status::Passed => 4,
        Status::NotApplicable => 5,
        Status::Skipped => 6,
    }
}

/// A benchmark suite in Markdown: score overall and per section, then each section's
/// controls, failed first, with the remediation of those that need work.
pub fn benchmark_markdown(sr: &SuiteResult) -> String {
    let mut s = String::new();
    let (Some(b), Some(card)) = (&sr.benchmark, gate::scorecard(sr)) else {
        return s;
    };
    let _ = writeln!(s, "### {}{}\n", md(&sr.suite), md(&on(&sr.probe)));
    let gate_rule = match b.min_score {
        Some(m) => format!("the gate needs a score of at least {m}%"),
        None => "the gate needs every applicable, unwaived, automated control to pass".into(),
    };
    let _ = writeln!(
        s,
        "{}, profile `{}`: **score {}** ({gate_rule})\n",
        md(&b.title),
        md(&b.profile),
        card.overall
    );
    let _ = writeln!(s, "{}\n", totals(sr));
    for note in &b.notes {
        let _ = writeln!(s, "> {}\n", md(note));
    }
    let _ = writeln!(s, "| Section | Score | Failed |\n|---|---|---|");
    let section_of = |r: &CheckResult| {
        r.control
            .as_ref()
            .map(|c| c.section.clone())
            .unwrap_or_default()
    };
    for (n, title, score) in &card.sections {
        let failed = sr
            .results
            .iter()
            .filter(|r| section_of(r) == *n && r.status.fails_gate())
            .count();
        let _ = writeln!(s, "| {} {} | {score} | {failed} |", md(n), md(title));
    }
    s.push('\n');
    for (n, title, score) in &card.sections {
        let mut rows: Vec<&CheckResult> =
            sr.results.iter().filter(|r| section_of(r) == *n).collect();
        rows.sort_by_key(|r| urgency(r.status));
        let _ = writeln!(s, "#### {} {}: {score}\n", md(n), md(title));
        let _ = writeln!(
            s,
            "| | Control | Details | Remediation |\n|---|---|---|---|"
        );
        for r in rows {
            let fix = match (&r.control, r.status) {
                (Some(c), Status::Failed | Status::Error | Status::Waived) => {
                    md(&clip(&c.remediation, 400))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} {} | {} | {fix} |",
                icon(r.status),
                md_code(&r.id),
                md(&r.title),
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
        (Status::Passed, _, _) if r.control.is_none() => r.title.clone(),
        _ => r.message.clone(),
    }
}

/// `3 passed, 1 failed, 0 errors, 1 skipped in 4.2s`; the other states when there are any
/// (`2 waived, 5 not applicable, 3 not reviewed`).
pub fn totals(sr: &SuiteResult) -> String {
    let mut more = String::new();
    for (status, what) in [
        (Status::Waived, "waived"),
        (Status::NotApplicable, "not applicable"),
        (Status::NotReviewed, "not reviewed"),
    ] {
        let n = sr.count(status);
        if n > 0 {
            more += &format!(", {n} {what}");
        }
    }
    format!(
        "{} passed, {} failed, {} errors, {} skipped{more} in {:.1}s",
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
        Status::NotApplicable => "n/a",
        Status::NotReviewed => "manual",
        Status::Waived => "waived",
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
            control: None,
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
            benchmark: None,
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
            benchmark: None,
        };
        let m = markdown(&[sr]);
        let row = m.lines().find(|l| l.starts_with("| ❌")).unwrap();
        assert_eq!(
            row,
            "| ❌ | `` a\\|`b` `` | expected body: ok, got &lt;details&gt;&lt;summary&gt;x&lt;/summary&gt; \\*\\*bold\\*\\* \\| \\[link\\](http://x) &amp; more |"
        );
    }

    #[test]
    fn a_benchmark_is_scored_by_section_with_failed_controls_first() {
        use crate::suites::model::{Control, Profile};
        use crate::suites::result::BenchmarkRun;
        let control = |id: &str, status: Status| CheckResult {
            control: Some(Box::new(Control {
                benchmark: "CIS Debian Linux 12 Benchmark v1.1.0".into(),
                section: id[..1].into(),
                level: 1,
                profiles: vec![Profile::Server],
                level_2_profiles: vec![],
                automated: true,
                cis_controls: vec![],
                rationale: "why".into(),
                remediation: format!("fix {id} in /etc/ssh/sshd_config"),
            })),
            ..result(
                id,
                status,
                Some("maxauthtries: <= 4"),
                Some("maxauthtries: 6"),
            )
        };
        let sr = SuiteResult {
            suite: "cis-debian-12".into(),
            probe: "vm-1".into(),
            results: vec![
                control("1.1.1.1", Status::Passed),
                control("1.1.2.3.2", Status::NotApplicable),
                control("5.1.5", Status::Passed),
                control("5.1.6", Status::Failed),
                control("5.1.7", Status::Waived),
            ],
            duration: Duration::from_secs(3),
            benchmark: Some(BenchmarkRun {
                id: "debian-12".into(),
                title: "CIS Debian Linux 12 Benchmark v1.1.0".into(),
                profile: "level-1-server".into(),
                sections: [
                    ("1".to_string(), "Initial Setup".to_string()),
                    ("5".to_string(), "Access Control".to_string()),
                ]
                .into_iter()
                .collect(),
                min_score: None,
                notes: vec!["the waiver for 5.1.9 expired on 2026-11-30".into()],
            }),
        };
        let md = markdown(std::slice::from_ref(&sr));
        assert!(md.contains("**score 50.0% (2/4)**"), "{md}");
        assert!(
            md.contains("| 1 Initial Setup | 100.0% (1/1) | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| 5 Access Control | 33.3% (1/3) | 1 |"),
            "{md}"
        );
        assert!(
            md.contains("> the waiver for 5.1.9 expired on 2026-11-30"),
            "{md}"
        );
        let failed = md.find("`5.1.6`").unwrap();
        let waived = md.find("`5.1.7`").unwrap();
        let passed = md.find("`5.1.5`").unwrap();
        assert!(failed < waived && waived < passed, "failed first: {md}");
        let row = md.lines().find(|l| l.contains("`5.1.6`")).unwrap();
        assert!(
            row.contains("expected maxauthtries: &lt;= 4, got maxauthtries: 6"),
            "{row}"
        );
        assert!(row.contains("fix 5.1.6 in /etc/ssh/sshd\\_config"), "{row}");
        let row = md.lines().find(|l| l.contains("`5.1.5`")).unwrap();
        assert!(row.ends_with("|  |"), "no remediation for a pass: {row}");
        let text = table(std::slice::from_ref(&sr));
        assert!(text.contains("score 50.0% (2/4)"), "{text}");
        assert!(text.contains("1 not applicable"), "{text}");
        assert!(
            text.contains("note: the waiver for 5.1.9 expired"),
            "{text}"
        );
    }
}
