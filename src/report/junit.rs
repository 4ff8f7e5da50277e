//! JUnit XML: one `testsuite` per suite and probe, one `testcase` per check.
//!
//! `classname` is the suite, `name` is `id: title`, a failure's message is "expected X, got Y",
//! `system-out` is the check's output (at most 64 KiB), and each suite carries `properties`
//! (the probe, plus those given: image id, provider, ...). Errors are `<error>`, skips
//! `<skipped>`.
//!
//! A benchmark control is named `<id> <title>` and carries its level and state as testcase
//! properties (`cis.level`, `cis.state`, `cis.section`, `cis.automated`); not-applicable,
//! not-reviewed and waived controls are `<skipped>` with the reason as message. A benchmark
//! suite's properties add its benchmark, profile and score.

use std::path::Path;

use junit_report::{Duration as JDuration, Report, TestCase, TestSuite};
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::{Reader, Writer};

use super::{bounded, xml_safe};
use crate::error::{Error, IoContext, Result};
use crate::suites::{CheckResult, Status, SuiteResult};

/// The most bytes of a check's output kept in `system-out`.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// Writes the JUnit report for `results` to `path`, creating parent directories.
pub fn write(path: &Path, results: &[SuiteResult], properties: &[(String, String)]) -> Result<()> {
    let xml = render(results, properties)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at("creating", dir)?;
    }
    std::fs::write(path, xml).at("writing", path)
}

/// Checks, before anything is created or boots, that the report can be written at `path` (and
/// its `.json` twin beside it): its directory can be made and a file created in it. `key` and
/// `file` locate the setting in the error.
pub fn check_writable(path: &Path, file: &Path, key: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let problem = if path.is_dir() {
        Some("it is a directory".to_string())
    } else {
        let probe = dir.join(format!(".bakery-check-{}", std::process::id()));
        let made = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&probe, b""));
        let _ = std::fs::remove_file(&probe);
        made.err()
            .map(|e| format!("{} cannot be written ({e})", dir.display()))
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::Config(format!(
            "{}: {key}: the report `{}` cannot be written: {why}; name a path in a writable directory",
            file.display(),
            path.display()
        ))),
    }
}

/// The JUnit report for `results` as a string.
pub fn render(results: &[SuiteResult], properties: &[(String, String)]) -> Result<String> {
    let mut report = Report::new();
    let mut props_per_suite = Vec::new();
    let mut case_props: Vec<Vec<Vec<(String, String)>>> = Vec::new();
    for sr in results {
        let name = if sr.probe.is_empty() {
            sr.suite.clone()
        } else {
            format!("{} @ {}", sr.suite, sr.probe)
        };
        let mut ts = TestSuite::new(&xml_safe(&name));
        ts.package = xml_safe(&sr.suite);
        if !sr.probe.is_empty() {
            ts.hostname = xml_safe(&sr.probe);
        }
        ts.add_testcases(sr.results.iter().map(|r| testcase(&sr.suite, r)));
        report.add_testsuite(ts);
        case_props.push(sr.results.iter().map(case_properties).collect());
        let mut props: Vec<(String, String)> = Vec::new();
        if let (Some(b), Some(card)) = (&sr.benchmark, crate::gate::scorecard(sr)) {
            props.push(("cis.benchmark".into(), b.title.clone()));
            props.push(("cis.profile".into(), b.profile.clone()));
            props.push(("cis.score".into(), card.overall.to_string()));
            if let Some(m) = b.min_score {
                props.push(("cis.min-score".into(), format!("{m}%")));
            }
            for (n, title, score) in &card.sections {
                props.push((format!("cis.score.{n}"), format!("{score} {title}")));
            }
        }
        if !sr.probe.is_empty() && !properties.iter().any(|(k, _)| k == "probe") {
            props.push(("probe".into(), sr.probe.clone()));
        }
        props.extend(properties.iter().cloned());
        props_per_suite.push(props);
    }
    let mut raw = Vec::new();
    report
        .write_xml(&mut raw)
        .map_err(|e| Error::Infra(format!("could not render the JUnit report: {e}")))?;
    let raw = String::from_utf8(raw)
        .map_err(|e| Error::Infra(format!("the JUnit report is not UTF-8: {e}")))?;
    add_properties(&raw, &props_per_suite, &case_props)
}

/// A testcase's properties: a control's level and state, an experiment's phases; none
/// for other checks.
fn case_properties(r: &CheckResult) -> Vec<(String, String)> {
    let mut props = control_properties(r);
    props.extend(experiment_properties(r));
    props
}

/// A control's testcase properties; none for other checks.
fn control_properties(r: &CheckResult) -> Vec<(String, String)> {
    let Some(c) = &r.control else {
        return Vec::new();
    };
    vec![
        ("cis.state".into(), r.status.as_str().into()),
        ("cis.level".into(), c.level.to_string()),
        ("cis.section".into(), c.section.clone()),
        ("cis.automated".into(), c.automated.to_string()),
    ]
}

/// An experiment's testcase properties: its fault, phases, timeline and time to recover.
fn experiment_properties(r: &CheckResult) -> Vec<(String, String)> {
    let Some(x) = &r.experiment else {
        return Vec::new();
    };
    let mut props = vec![
        ("chaos.fault".to_string(), x.fault.clone()),
        (
            "chaos.time-to-recover-secs".to_string(),
            x.time_to_recover_secs
                .map_or_else(|| "none".to_string(), |t| format!("{t:.3}")),
        ),
        (
            "chaos.recover-within-secs".to_string(),
            format!("{:.0}", x.recover_within_secs),
        ),
        (
            "chaos.duration-secs".to_string(),
            format!("{:.0}", x.duration_secs),
        ),
    ];
    for p in &x.phases {
        props.push((
            format!("chaos.phase.{}", p.phase.as_str().replace(' ', "-")),
            format!(
                "{} at {:.2}s, took {:.2}s: {}",
                p.status, p.at_secs, p.took_secs, p.detail
            ),
        ));
    }
    props
}

fn testcase(suite: &str, r: &CheckResult) -> TestCase {
    let name = if r.control.is_some() {
        format!("{} {}", r.id, r.title)
    } else if r.title == r.id {
        r.id.clone()
    } else {
        format!("{}: {}", r.id, r.title)
    };
    let name = xml_safe(&name);
    let time = JDuration::try_from(r.duration).unwrap_or(JDuration::ZERO);
    let summary = match (&r.expected, &r.actual) {
        (Some(e), Some(a)) if r.status == Status::Failed => format!("expected {e}, got {a}"),
        _ => r.message.clone(),
    };
    let summary = xml_safe(&summary);
    let mut tc = match r.status {
        Status::Passed => TestCase::success(&name, time),
        Status::Failed => TestCase::failure(&name, time, "failed", &summary),
        Status::Error => TestCase::error(&name, time, "error", &summary),
        Status::Skipped | Status::NotApplicable | Status::NotReviewed | Status::Waived => {
            TestCase::skipped_with_cause(&name, r.status.as_str(), &xml_safe(&r.message))
        }
    };
    if matches!(r.status, Status::Failed | Status::Error) {
        set_cause(&mut tc, cdata_safe(&xml_safe(&r.message)));
    }
    tc.set_classname(&xml_safe(suite));
    if !r.output.is_empty() {
        tc.set_system_out(&cdata_safe(&xml_safe(&bounded(&r.output, OUTPUT_LIMIT))));
    }
    tc
}

fn set_cause(tc: &mut TestCase, text: String) {
    use junit_report::TestResult;
    if let TestResult::Failure { cause, .. } | TestResult::Error { cause, .. } = &mut tc.result {
        *cause = Some(text);
    }
}

/// junit-report writes text as CDATA without splitting `]]>`; split it so the XML stays valid.
fn cdata_safe(s: &str) -> String {
    s.replace("]]>", "]]]]><![CDATA[>")
}

/// Inserts a `<properties>` element at the start of each `<testsuite>`, and of each
/// `<testcase>` that has some (junit-report writes none).
fn add_properties(
    xml: &str,
    props: &[Vec<(String, String)>],
    cases: &[Vec<Vec<(String, String)>>],
) -> Result<String> {
    let err =
        |e: &dyn std::fmt::Display| Error::Infra(format!("could not add JUnit properties: {e}"));
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::new());
    let mut suite = 0;
    let mut case = 0;
    let case_props = |suite: usize, case: usize| {
        suite
            .checked_sub(1)
            .and_then(|s| cases.get(s))
            .and_then(|c| c.get(case))
    };
    loop {
        let event = reader.read_event().map_err(|e| err(&e))?;
        match event {
            Event::Eof => break,
            Event::Start(ref start) if start.name().as_ref() == b"testcase" => {
                writer.write_event(event.borrow()).map_err(|e| err(&e))?;
                write_props(&mut writer, case_props(suite, case)).map_err(|e| err(&e))?;
                case += 1;
            }
            Event::Empty(start) if start.name().as_ref() == b"testcase" => {
                match case_props(suite, case).filter(|p| !p.is_empty()) {
                    Some(p) => {
                        writer
                            .write_event(Event::Start(start.borrow()))
                            .map_err(|e| err(&e))?;
                        write_props(&mut writer, Some(p)).map_err(|e| err(&e))?;
                        writer
                            .write_event(Event::End(BytesEnd::new("testcase")))
                            .map_err(|e| err(&e))?;
                    }
                    None => writer
                        .write_event(Event::Empty(start))
                        .map_err(|e| err(&e))?,
                }
                case += 1;
            }
            Event::Start(ref start) if start.name().as_ref() == b"testsuite" => {
                writer.write_event(event.borrow()).map_err(|e| err(&e))?;
                write_props(&mut writer, props.get(suite)).map_err(|e| err(&e))?;
                suite += 1;
                case = 0;
            }
            Event::Empty(start) if start.name().as_ref() == b"testsuite" => {
                writer
                    .write_event(Event::Start(start.borrow()))
                    .map_err(|e| err(&e))?;
                write_props(&mut writer, props.get(suite)).map_err(|e| err(&e))?;
                writer
                    .write_event(Event::End(BytesEnd::new("testsuite")))
                    .map_err(|e| err(&e))?;
                suite += 1;
                case = 0;
            }
            other => writer.write_event(other).map_err(|e| err(&e))?,
        }
    }
    String::from_utf8(writer.into_inner()).map_err(|e| err(&e))
}

fn write_props(
    w: &mut Writer<Vec<u8>>,
    props: Option<&Vec<(String, String)>>,
) -> std::io::Result<()> {
    let Some(props) = props.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    for (k, v) in props {
        let (k, v) = (xml_safe(k), xml_safe(v));
        w.create_element("property")
            .with_attribute(("name", k.as_str()))
            .with_attribute(("value", v.as_str()))
            .write_empty()?;
    }
    w.write_event(Event::End(BytesEnd::new("properties")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    /// A parsed element: name, attributes, text (CDATA included) and children.
    #[derive(Debug, Default)]
    struct El {
        name: String,
        attrs: HashMap<String, String>,
        text: String,
        children: Vec<El>,
    }

    impl El {
        fn all(&self, name: &str) -> Vec<&El> {
            self.children.iter().filter(|c| c.name == name).collect()
        }
        fn one(&self, name: &str) -> &El {
            self.all(name)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name))
        }
    }

    fn parse(xml: &str) -> El {
        let mut reader = Reader::from_str(xml);
        let mut stack = vec![El::default()];
        let start = |e: &BytesStart| El {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect(),
            ..Default::default()
        };
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Eof => break,
                Event::Start(e) => stack.push(start(&e)),
                Event::Empty(e) => stack.last_mut().unwrap().children.push(start(&e)),
                Event::End(_) => {
                    let el = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(el);
                }
                Event::CData(t) => stack.last_mut().unwrap().text += &t.decode().unwrap(),
                Event::Text(t) => stack.last_mut().unwrap().text += &t.decode().unwrap(),
                _ => {}
            }
        }
        assert_eq!(stack.len(), 1, "unbalanced XML");
        stack.pop().unwrap()
    }

    fn result(id: &str, title: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: title.into(),
            kind: "command".into(),
            tags: vec![],
            status,
            expected: Some("exit-status: 0".into()),
            actual: Some("exit-status: 1".into()),
            message: format!("{id}: it went \"wrong\" <here>"),
            output: String::new(),
            duration: Duration::from_millis(250),
            attempts: 1,
            control: None,
            experiment: None,
        }
    }

    fn results() -> Vec<SuiteResult> {
        let mut out = result("cmd", "A command runs", Status::Failed);
        out.output = format!("\u{1b}[31mred\u{1b}[0m ]]> tail {}", "x".repeat(100 * 1024));
        vec![
            SuiteResult {
                suite: "smoke".into(),
                probe: "vm-1 (img-1)".into(),
                results: vec![
                    result("ok", "ok", Status::Passed),
                    out,
                    result("err", "Broken", Status::Error),
                    CheckResult {
                        message: "skipped: not on arm".into(),
                        ..result("skip", "Skipped", Status::Skipped)
                    },
                ],
                duration: Duration::from_secs(1),
                benchmark: None,
            },
            SuiteResult {
                suite: "empty".into(),
                probe: "vm-1 (img-1)".into(),
                results: vec![],
                duration: Duration::ZERO,
                benchmark: None,
            },
        ]
    }

    #[test]
    fn report_parses_back_with_every_part_in_place() {
        let props = [
            ("image".to_string(), "img-1".to_string()),
            ("provider".to_string(), "local".to_string()),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/junit.xml");
        write(&path, &results(), &props).unwrap();
        let root = parse(&std::fs::read_to_string(&path).unwrap());
        let suites = root.one("testsuites").all("testsuite");
        assert_eq!(suites.len(), 2);
        let ts = suites[0];
        assert_eq!(ts.attrs["name"], "smoke @ vm-1 (img-1)");
        assert_eq!(ts.attrs["tests"], "4");
        assert_eq!(ts.attrs["failures"], "1");
        assert_eq!(ts.attrs["errors"], "1");
        let props: Vec<(String, String)> = ts
            .one("properties")
            .all("property")
            .iter()
            .map(|p| (p.attrs["name"].clone(), p.attrs["value"].clone()))
            .collect();
        assert_eq!(props[0], ("probe".into(), "vm-1 (img-1)".into()));
        assert_eq!(props[1], ("image".into(), "img-1".into()));
        assert_eq!(props[2], ("provider".into(), "local".into()));
        let cases = ts.all("testcase");
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[0].attrs["name"], "ok");
        assert_eq!(cases[0].attrs["classname"], "smoke");
        assert_eq!(cases[0].attrs["time"], "0.25");
        assert_eq!(cases[1].attrs["name"], "cmd: A command runs");
        let failure = cases[1].one("failure");
        assert_eq!(
            failure.attrs["message"],
            "expected exit-status: 0, got exit-status: 1"
        );
        assert!(failure.text.contains("it went \"wrong\" <here>"));
        let out = &cases[1].one("system-out").text;
        assert!(
            out.starts_with("\\x1b[31mred\\x1b[0m ]]> tail "),
            "{}",
            &out[..40]
        );
        assert!(out.len() <= OUTPUT_LIMIT + 100);
        assert!(out.contains("bytes left out"));
        assert_eq!(
            cases[2].one("error").attrs["message"],
            "err: it went \"wrong\" <here>"
        );
        assert_eq!(
            cases[3].one("skipped").attrs["message"],
            "skipped: not on arm"
        );
        let empty = suites[1];
        assert_eq!(empty.attrs["tests"], "0");
        assert_eq!(empty.one("properties").all("property").len(), 3);
    }

    #[test]
    fn controls_carry_level_and_state_and_the_suite_its_score() {
        use crate::suites::model::{Control, Profile};
        let control = |id: &str, status: Status, message: &str| CheckResult {
            message: message.into(),
            control: Some(Box::new(Control {
                benchmark: "CIS Debian Linux 12 Benchmark v1.1.0".into(),
                section: id[..1].into(),
                level: 1,
                profiles: vec![Profile::Server],
                level_2_profiles: vec![],
                automated: status != Status::NotReviewed,
                cis_controls: vec![],
                rationale: "r".into(),
                remediation: "fix it".into(),
            })),
            ..result(id, "sshd limits authentication attempts", status)
        };
        let sr = SuiteResult {
            suite: "cis-debian-12".into(),
            probe: "vm-1".into(),
            results: vec![
                control("5.1.6", Status::Passed, "ok"),
                control(
                    "5.1.7",
                    Status::Failed,
                    "maxauthtries: expected <= 4, got 6",
                ),
                control(
                    "1.1.2.3.2",
                    Status::NotApplicable,
                    "not applicable: no /home mount",
                ),
                control("1.2.1.1", Status::NotReviewed, "a manual control"),
                control("5.1.8", Status::Waived, "waived: jump host"),
            ],
            duration: Duration::from_secs(1),
            benchmark: Some(crate::suites::result::BenchmarkRun {
                id: "debian-12".into(),
                title: "CIS Debian Linux 12 Benchmark v1.1.0".into(),
                profile: "level-1-server".into(),
                sections: [("1".to_string(), "Initial Setup".to_string())]
                    .into_iter()
                    .collect(),
                min_score: Some(50.0),
                notes: vec![],
            }),
        };
        let root = parse(&render(&[sr], &[]).unwrap());
        let suite = root.one("testsuites").one("testsuite");
        let props: Vec<(&str, &str)> = suite
            .one("properties")
            .all("property")
            .iter()
            .map(|p| (p.attrs["name"].as_str(), p.attrs["value"].as_str()))
            .collect();
        assert!(props.contains(&("cis.score", "33.3% (1/3)")), "{props:?}");
        assert!(props.contains(&("cis.min-score", "50%")), "{props:?}");
        assert!(
            props.contains(&("cis.score.1", "100.0% (0/0) Initial Setup")),
            "{props:?}"
        );
        let cases = suite.all("testcase");
        assert_eq!(
            cases[0].attrs["name"],
            "5.1.6 sshd limits authentication attempts"
        );
        let state = |i: usize| {
            let p = cases[i].one("properties").all("property");
            let get = |n: &str| {
                p.iter()
                    .find(|x| x.attrs["name"] == n)
                    .map(|x| x.attrs["value"].clone())
                    .unwrap()
            };
            (get("cis.state"), get("cis.level"))
        };
        assert_eq!(state(0), ("passed".to_string(), "1".to_string()));
        assert_eq!(state(1).0, "failed");
        cases[1].one("failure");
        for (i, what) in [(2, "not-applicable"), (3, "not-reviewed"), (4, "waived")] {
            assert_eq!(state(i).0, what);
            let skipped = cases[i].one("skipped");
            assert_eq!(skipped.attrs["type"], what);
            assert!(!skipped.attrs["message"].is_empty());
        }
    }

    #[test]
    fn an_experiment_carries_its_phases_and_time_to_recover_as_testcase_properties() {
        use crate::chaos::runner::{Activity, Phase, PhaseResult, Record};
        let record = Record {
            fault: "kill-process".into(),
            duration_secs: 0.0,
            recover_within_secs: 10.0,
            time_to_recover_secs: None,
            phases: vec![
                PhaseResult {
                    phase: Phase::SteadyStateBefore,
                    status: Status::Passed,
                    detail: "1 checks passed".into(),
                    at_secs: 0.0,
                    took_secs: 0.5,
                },
                PhaseResult {
                    phase: Phase::Recovery,
                    status: Status::Failed,
                    detail: "not back".into(),
                    at_secs: 1.0,
                    took_secs: 10.0,
                },
            ],
            journal: vec![Activity {
                at_secs: 0.7,
                what: "sent SIGKILL to 42".into(),
            }],
        };
        let exp = CheckResult {
            kind: "experiment".into(),
            message: "recovery: the steady state did not hold again within 10s".into(),
            output: record.journal_text(),
            expected: None,
            actual: None,
            experiment: Some(Box::new(record)),
            ..result("nginx-sigkill", "nginx comes back", Status::Failed)
        };
        let sr = SuiteResult {
            suite: "web-chaos".into(),
            probe: "chaos: vm-2 (img-1)".into(),
            results: vec![result("plain", "plain", Status::Passed), exp],
            duration: Duration::from_secs(12),
            benchmark: None,
        };
        let root = parse(&render(&[sr], &[]).unwrap());
        let cases = root.one("testsuites").one("testsuite").all("testcase");
        assert!(
            cases[0].all("properties").is_empty(),
            "a check has no testcase properties"
        );
        let props: HashMap<String, String> = cases[1]
            .one("properties")
            .all("property")
            .iter()
            .map(|p| (p.attrs["name"].clone(), p.attrs["value"].clone()))
            .collect();
        assert_eq!(props["chaos.fault"], "kill-process");
        assert_eq!(props["chaos.time-to-recover-secs"], "none");
        assert_eq!(props["chaos.recover-within-secs"], "10");
        assert!(props["chaos.phase.recovery"].starts_with("failed at 1.00s"));
        assert!(props["chaos.phase.steady-state-before"].starts_with("passed"));
        assert!(cases[1].one("failure").attrs["message"].starts_with("recovery: "));
        assert!(cases[1]
            .one("system-out")
            .text
            .contains("sent SIGKILL to 42"));
    }
}
