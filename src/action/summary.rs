//! The Markdown the action leaves behind: the job summary (`$GITHUB_STEP_SUMMARY`, at most
//! 1 MiB per step), the same text in a file for later steps, and a check run's summary (at
//! most 65,535 bytes). Whatever the limit, the result, the image and the failed checks come
//! first; the per-suite tables give way to totals when they do not fit.

use std::fmt::Write;
use std::time::Duration;

use crate::cloud::Image;
use crate::report::summary as report_summary;
use crate::suites::{Status, SuiteResult};

/// GitHub's limit for one step's job summary.
pub const JOB_SUMMARY_LIMIT: usize = 1024 * 1024;
/// The most the image's changes take of a summary (a check run's summary gets a quarter of
/// its 65,535 bytes).
const MAX_CHANGES_BYTES: usize = 64 * 1024;

/// How a run of the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    /// Everything asked for was done; every gate that ran passed.
    Passed,
    /// The image failed: a provisioner or a gate failed, or promotion was refused.
    Failed,
    /// A configuration or infrastructure error stopped the run.
    Error,
    /// The run was cancelled (SIGINT or SIGTERM) and released what it had created.
    Cancelled,
}

impl RunResult {
    /// The value of the `result` output.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Passed => "passed",
            RunResult::Failed => "failed",
            RunResult::Error => "error",
            RunResult::Cancelled => "cancelled",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            RunResult::Passed => "✅",
            RunResult::Failed => "❌",
            RunResult::Error => "💥",
            RunResult::Cancelled => "⏹️",
        }
    }
}

/// Everything the action reports about one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The mode's name (`run`, `verify`, ...).
    pub mode: String,
    pub result: RunResult,
    /// The image baked, verified or promoted.
    pub image: Option<Image>,
    pub promoted: bool,
    /// The pointer moved by promotion and its new version.
    pub pointer: Option<(String, u64)>,
    /// Promotion's outcome in each region (a provider with regions).
    pub regions: Vec<crate::promote::RegionResult>,
    /// The suites' results, when a verify stage finished.
    pub results: Vec<SuiteResult>,
    /// The JUnit file, as shown to the user (relative to the workspace when inside it).
    pub junit: Option<String>,
    pub timings: Vec<(String, Duration)>,
    /// What stopped the run, if something did.
    pub error: Option<String>,
    /// Problems that did not stop the run (a check run that could not be created, ...).
    pub warnings: Vec<String>,
    /// Other facts worth a line (the image looked up for a release, the outdated verdict).
    pub notes: Vec<String>,
    /// `outdated` mode's answer.
    pub outdated: Option<bool>,
    /// The commit the run was for.
    pub commit: Option<String>,
    /// The image compared with the one the pointer named before the run.
    pub changes: Option<crate::manifest::diff::Comparison>,
}

impl Report {
    /// An empty report for `mode`, passed until something says otherwise.
    pub fn new(mode: &str) -> Report {
        Report {
            mode: mode.to_string(),
            result: RunResult::Passed,
            image: None,
            promoted: false,
            pointer: None,
            regions: Vec::new(),
            results: Vec::new(),
            junit: None,
            timings: Vec::new(),
            error: None,
            warnings: Vec::new(),
            notes: Vec::new(),
            outdated: None,
            commit: None,
            changes: None,
        }
    }

    /// The step's outputs (`$GITHUB_OUTPUT`), every name action.yml declares, in its order;
    /// `summary_path` is where the summary file was written, as shown to the user.
    pub fn step_outputs(&self, summary_path: String) -> Vec<(&'static str, String)> {
        let image = |field: fn(&Image) -> &String| {
            self.image.as_ref().map(field).cloned().unwrap_or_default()
        };
        vec![
            ("result", self.result.as_str().to_string()),
            ("image-id", image(|i| &i.id)),
            ("image-name", image(|i| &i.name)),
            ("promoted", self.promoted.to_string()),
            ("images", self.images_output()),
            ("junit-path", self.junit.clone().unwrap_or_default()),
            ("summary-path", summary_path),
            (
                "outdated",
                self.outdated.map(|o| o.to_string()).unwrap_or_default(),
            ),
        ]
    }

    /// The `images` output: a JSON map region → image id of the regions promotion finished
    /// (`{}` when nothing was promoted to a region).
    pub fn images_output(&self) -> String {
        let map: std::collections::BTreeMap<&str, &str> = self
            .regions
            .iter()
            .filter_map(|r| Some((r.region.as_str(), r.image.as_deref()?)))
            .collect();
        serde_json::to_string(&map).expect("a map serializes")
    }

    /// Failed and errored checks, with their suite.
    pub fn failed_checks(&self) -> Vec<(&str, &crate::suites::CheckResult)> {
        self.results
            .iter()
            .flat_map(|sr| sr.results.iter().map(move |r| (sr.suite.as_str(), r)))
            .filter(|(_, r)| matches!(r.status, Status::Failed | Status::Error))
            .collect()
    }

    /// `failed: 2 of 14 checks failed on ami-…`: a one-line headline.
    pub fn headline(&self) -> String {
        let image = self
            .image
            .as_ref()
            .map(|i| format!(" on {}", i.id))
            .unwrap_or_default();
        let ran: usize = self
            .results
            .iter()
            .map(|sr| sr.results.len() - sr.count(Status::Skipped))
            .sum();
        match self.result {
            RunResult::Passed if !self.results.is_empty() => {
                let promoted = if self.promoted { "; promoted" } else { "" };
                format!("passed: {ran} checks passed{image}{promoted}")
            }
            RunResult::Passed => format!("{}: passed{image}", self.mode),
            RunResult::Failed if !self.results.is_empty() => format!(
                "failed: {} of {ran} checks failed{image}",
                self.failed_checks().len()
            ),
            RunResult::Failed => format!(
                "failed: {}",
                first_line(self.error.as_deref().unwrap_or("the image failed"))
            ),
            RunResult::Error => format!(
                "error: {}",
                first_line(self.error.as_deref().unwrap_or("unknown error"))
            ),
            RunResult::Cancelled => format!("cancelled{image}"),
        }
    }
}

/// The report as Markdown of at most `limit` bytes.
pub fn render(report: &Report, limit: usize) -> String {
    let mut head = String::new();
    let _ = writeln!(
        head,
        "## {} Bakery `{}`: {}\n",
        report.result.icon(),
        report.mode,
        cell(&report.headline(), 300)
    );
    let _ = writeln!(head, "| | |\n|---|---|");
    let _ = writeln!(head, "| Result | **{}** |", report.result.as_str());
    if let Some(i) = &report.image {
        let _ = writeln!(
            head,
            "| Image | {} ({}) |",
            code(&i.id, 100),
            cell(&i.name, 200)
        );
    }
    if report.image.is_some() || report.mode == "promote" || report.mode == "run" {
        let promoted = match (&report.pointer, report.promoted) {
            (Some((p, v)), _) => format!("yes: {} → version {v}", code(p, 200)),
            (None, true) => "yes".to_string(),
            (None, false) => "no".to_string(),
        };
        let _ = writeln!(head, "| Promoted | {promoted} |");
    }
    if !report.regions.is_empty() {
        let pointer = report
            .pointer
            .as_ref()
            .map(|(p, _)| p.as_str())
            .unwrap_or("");
        let _ = writeln!(
            head,
            "\n| Region | Image | Outcome | Pointer |\n|---|---|---|---|"
        );
        for r in &report.regions {
            let outcome = match (&r.error, r.origin) {
                (Some(e), _) => format!("failed: {}", cell(e, 400)),
                (None, o) => {
                    let origin = match o {
                        Some(crate::cloud::ImageOrigin::Copied) => "copied",
                        Some(crate::cloud::ImageOrigin::Reused) => "reused",
                        _ => "the image itself",
                    };
                    match r.granted.len() {
                        0 => origin.to_string(),
                        n => format!("{origin}, {n} permission(s) granted"),
                    }
                }
            };
            let version = match (r.pointer_version, r.pointer_changed) {
                (Some(v), true) => format!("{} → version {v}", code(pointer, 200)),
                (Some(v), false) => format!("{} unchanged (version {v})", code(pointer, 200)),
                _ => "-".into(),
            };
            let _ = writeln!(
                head,
                "| {} | {} | {outcome} | {version} |",
                code(&r.region, 40),
                r.image
                    .as_deref()
                    .map(|i| code(i, 40))
                    .unwrap_or_else(|| "-".into())
            );
        }
        head.push('\n');
    }
    if let Some(o) = report.outdated {
        let _ = writeln!(head, "| Outdated | {} |", if o { "yes" } else { "no" });
    }
    if let Some(c) = &report.commit {
        let _ = writeln!(head, "| Commit | {} |", code(c, 80));
    }
    if let Some(j) = &report.junit {
        let _ = writeln!(head, "| JUnit | {} |", code(j, 300));
    }
    head.push('\n');
    if let Some(e) = &report.error {
        let _ = writeln!(
            head,
            "### Error\n\n```text\n{}\n```\n",
            fence_safe(&bounded(e, 8_000))
        );
    }
    for w in &report.warnings {
        let _ = writeln!(head, "> [!WARNING]\n> {}\n", cell(w, 2_000));
    }
    for n in &report.notes {
        let _ = writeln!(head, "{}\n", cell(n, 2_000));
    }

    let mut timings = String::new();
    if !report.timings.is_empty() {
        let _ = writeln!(
            timings,
            "### Stage timings\n\n| Stage | Seconds |\n|---|---:|"
        );
        for (name, took) in &report.timings {
            let _ = writeln!(
                timings,
                "| {} | {:.1} |",
                cell(name, 100),
                took.as_secs_f64()
            );
        }
        timings.push('\n');
    }

    // What changed in the image, after the head: a bounded share of the limit.
    let changes = report
        .changes
        .as_ref()
        .map(|c| c.markdown(MAX_CHANGES_BYTES.min(limit / 4)))
        .unwrap_or_default();
    head.push_str(&changes);

    // The per-suite totals, which replace the full tables when those do not fit.
    let mut totals = String::new();
    if !report.results.is_empty() {
        let _ = writeln!(
            totals,
            "### Suites\n\n(The full tables do not fit GitHub's size limit: the JUnit file has every check.)\n\n| Suite | Totals |\n|---|---|"
        );
        for sr in &report.results {
            let _ = writeln!(
                totals,
                "| {} | {} |",
                cell(&sr.suite, 200),
                report_summary::totals(sr)
            );
        }
        totals.push('\n');
    }

    // The failed checks, as many as fit beside the head, the totals and the timings.
    const CUT_NOTE: usize = 200;
    let failed = report.failed_checks();
    let mut failures = String::new();
    if !failed.is_empty() {
        let budget = limit.saturating_sub(head.len() + timings.len() + totals.len() + CUT_NOTE);
        let _ = writeln!(
            failures,
            "### Failed checks ({})\n\n| Suite | Check | Expected | Actual |\n|---|---|---|---|",
            failed.len()
        );
        let mut shown = 0;
        for (suite, r) in &failed {
            let (expected, actual) = match (r.status, &r.expected, &r.actual) {
                (Status::Failed, Some(e), Some(a)) => (e.clone(), a.clone()),
                (Status::Error, _, _) => {
                    ("(could not be evaluated)".to_string(), r.message.clone())
                }
                (_, e, _) => (e.clone().unwrap_or_else(|| "-".into()), r.message.clone()),
            };
            let row = format!(
                "| {} | {} {} | {} | {} |\n",
                cell(suite, 100),
                code(&r.id, 100),
                cell(&r.title, 200),
                cell(&expected, 500),
                cell(&actual, 500)
            );
            if failures.len() + row.len() > budget {
                break;
            }
            failures.push_str(&row);
            shown += 1;
        }
        if shown < failed.len() {
            let _ = writeln!(
                failures,
                "\n… and {} more failed checks: the JUnit file has every one.",
                failed.len() - shown
            );
        }
        failures.push('\n');
    }

    // The per-suite tables if they fit, else the totals.
    let left = limit.saturating_sub(head.len() + timings.len() + failures.len());
    let suites = if report.results.is_empty() {
        String::new()
    } else {
        let full = report_summary::markdown(&report.results);
        if full.len() <= left {
            full
        } else {
            totals
        }
    };
    let text = format!("{head}{failures}{suites}{timings}");
    crate::report::github::clip_bytes(&text, limit)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn bounded(s: &str, limit: usize) -> String {
    crate::report::github::clip_bytes(s, limit)
}

/// `s` cut to `width` characters, with `…` when something was cut.
fn cut(s: &str, width: usize) -> String {
    let mut t: String = s.chars().take(width).collect();
    if s.chars().count() > width {
        t.push('…');
    }
    t
}

/// Text made safe for a Markdown table cell ([`report_summary::md`]), cut to `width` characters.
pub fn cell(s: &str, width: usize) -> String {
    report_summary::md(&cut(s, width))
}

/// A code span for a table cell ([`report_summary::md_code`]), cut to `width` characters.
fn code(s: &str, width: usize) -> String {
    report_summary::md_code(&cut(s, width))
}

fn fence_safe(s: &str) -> String {
    s.replace("```", "ˋˋˋ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::CheckResult;

    fn check(id: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: format!("{id} title"),
            kind: "service".into(),
            tags: vec![],
            status,
            expected: Some("running: true".into()),
            actual: Some("running: false".into()),
            message: format!("{id} message"),
            output: String::new(),
            duration: Duration::from_millis(10),
            attempts: 1,
            control: None,
            experiment: None,
        }
    }

    fn report(n_failed: usize) -> Report {
        let mut results = vec![check("sshd", Status::Passed)];
        results.extend((0..n_failed).map(|i| check(&format!("svc-{i}"), Status::Failed)));
        let mut r = Report::new("run");
        r.result = RunResult::Failed;
        r.image = Some(Image {
            id: "ami-0123456789abcdef0".into(),
            name: "web-1".into(),
            parent: None,
            tags: Default::default(),
            state: "available".into(),
            created: String::new(),
            size_bytes: 0,
        });
        r.results = vec![SuiteResult {
            suite: "smoke".into(),
            probe: "i-1".into(),
            results,
            duration: Duration::from_secs(2),
            benchmark: None,
        }];
        r.timings = vec![("bake".into(), Duration::from_secs(65))];
        r
    }

    #[test]
    fn shows_result_image_failures_suites_and_timings() {
        let md = render(&report(1), JOB_SUMMARY_LIMIT);
        assert!(
            md.contains(
                "## ❌ Bakery `run`: failed: 1 of 2 checks failed on ami-0123456789abcdef0"
            ),
            "{md}"
        );
        assert!(
            md.contains("| Image | `ami-0123456789abcdef0` (web-1) |"),
            "{md}"
        );
        assert!(
            md.contains("| smoke | `svc-0` svc-0 title | running: true | running: false |"),
            "{md}"
        );
        assert!(md.contains("### smoke on i-1"), "{md}");
        assert!(md.contains("| bake | 65.0 |"), "{md}");
    }

    #[test]
    fn stays_under_the_limit_keeping_the_head() {
        let r = report(5_000);
        let md = render(&r, 65_535);
        assert!(md.len() <= 65_535, "{}", md.len());
        assert!(md.contains("failed: 5000 of 5001 checks failed"));
        assert!(md.contains("more failed checks: the JUnit file has every one"));
        assert!(
            md.contains("| smoke | 1 passed, 5000 failed"),
            "totals instead of tables"
        );
        assert!(md.contains("| bake | 65.0 |"));
        let big = render(&r, JOB_SUMMARY_LIMIT);
        assert!(big.len() <= JOB_SUMMARY_LIMIT);
    }

    #[test]
    fn the_image_changes_follow_the_head_within_their_share() {
        use crate::manifest::diff::{Change, Comparison, Diff};
        use crate::manifest::Package;
        let mut r = report(1);
        let added = (0..5_000)
            .map(|i| Package {
                name: format!("package-{i}"),
                version: "1.0-1".into(),
                arch: "amd64".into(),
            })
            .collect();
        r.changes = Some(Comparison {
            pointer: "/golden/web/latest".into(),
            against: Some("ami-00000000000000001".into()),
            diff: Some(Diff {
                from: "ami-00000000000000001".into(),
                to: "ami-0123456789abcdef0".into(),
                kernel: Some(Change {
                    from: "6.1.0-27-amd64".into(),
                    to: "6.1.0-28-amd64".into(),
                }),
                added,
                ..Diff::default()
            }),
            note: None,
        });
        let md = render(&r, crate::report::github::MAX_SUMMARY_BYTES);
        assert!(md.len() <= crate::report::github::MAX_SUMMARY_BYTES);
        let changes = md
            .find("### Image changes against `/golden/web/latest`")
            .unwrap();
        assert!(changes < md.find("### Failed checks").unwrap(), "{md}");
        assert!(md.contains("kernel 6.1.0-27-amd64 → 6.1.0-28-amd64; packages: 5000 added"));
        assert!(md.contains("| kernel | | 6.1.0-27-amd64 | 6.1.0-28-amd64 |"));
        assert!(md.contains("more changes: `bakery diff`"));
        // The failed check still fits beside them.
        assert!(md.contains("| smoke | `svc-0` svc-0 title |"), "{md}");
        let section = &md[changes..md.find("### Failed checks").unwrap()];
        assert!(section.len() <= crate::report::github::MAX_SUMMARY_BYTES / 4);
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc<d>", 100), "a\\|b<br>c&lt;d&gt;");
        assert_eq!(cell("abcdef", 3), "abc…");
    }

    #[test]
    fn each_region_is_in_the_images_output_and_the_summary() {
        use crate::cloud::ImageOrigin;
        use crate::promote::RegionResult;
        let mut r = Report::new("promote");
        assert_eq!(r.images_output(), "{}");
        let region = |name: &str, image: Option<&str>, error: Option<&str>| RegionResult {
            region: name.into(),
            status: if error.is_some() { "failed" } else { "done" },
            image: image.map(String::from),
            origin: image.map(|_| ImageOrigin::Copied),
            granted: vec!["launch: account 111122223333".into()],
            pointer_version: image.map(|_| 4),
            pointer_changed: true,
            deprecate_at: None,
            error: error.map(String::from),
        };
        r.pointer = Some(("/golden/web".into(), 4));
        r.regions = vec![
            region("us-east-1", Some("ami-1"), None),
            region("eu-west-1", Some("ami-2"), None),
            region("ap-southeast-2", None, Some("AWS refused ec2:CopyImage")),
        ];
        let outputs = r.step_outputs(String::new());
        let images = &outputs.iter().find(|(k, _)| *k == "images").unwrap().1;
        assert_eq!(images, r#"{"eu-west-1":"ami-2","us-east-1":"ami-1"}"#);
        let md = render(&r, JOB_SUMMARY_LIMIT);
        assert!(
            md.contains("| `eu-west-1` | `ami-2` | copied, 1 permission(s) granted | `/golden/web` → version 4 |"),
            "{md}"
        );
        assert!(
            md.contains("| `ap-southeast-2` | - | failed: AWS refused ec2:CopyImage | - |"),
            "{md}"
        );
    }
}
