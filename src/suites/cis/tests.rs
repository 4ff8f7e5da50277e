use std::time::Duration;

use super::*;
use crate::suites::model::Control;

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn variables_are_substituted_outside_comments() {
    let text =
        "# `${anything}` in a comment stays\n  stdout: \"${banner}\"\n  value: {le: ${tries}}\n";
    let out = substitute(
        text,
        &values(&[("banner", "Hi there"), ("tries", "4")]),
        "x.yml",
    )
    .unwrap();
    assert_eq!(
        out,
        "# `${anything}` in a comment stays\n  stdout: \"Hi there\"\n  value: {le: 4}\n"
    );
    let e = substitute(
        "a: 1\nb: \"${nope}\"\n",
        &values(&[("tries", "4")]),
        "x.yml",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "x.yml:2:5: unknown variable `${nope}`; the benchmark's variables: tries"
    );
    assert_eq!(blank_references("v: ${a} ${b}\n"), "v: 0 0\n");
}

fn spec(yaml: &str) -> CisRef {
    serde_yaml::from_str(yaml).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

fn load_in(dir: &Path, yaml: &str) -> Result<crate::suites::Suite> {
    load(
        &spec(yaml),
        "bakery.yml:9:7: verify.suites[1].cis",
        &|p| dir.join(p),
        today(),
    )
}

#[test]
fn the_built_in_benchmark_loads_with_its_profiles() {
    let b = Benchmark::load("debian-12", &BTreeMap::new(), "k").unwrap();
    assert_eq!(b.title, "CIS Debian Linux 12 Benchmark v1.1.0");
    assert_eq!(
        (b.os.id.as_str(), b.os.version_id.as_str()),
        ("debian", "12")
    );
    let l1 = b.select("level-1-server").unwrap();
    let l2 = b.select("level-2-server").unwrap();
    assert!(l2.len() > l1.len(), "level 2 includes level 1");
    assert!(l1.iter().all(|c| {
        let m = c.control.as_ref().unwrap();
        m.level == 1 && m.profiles.contains(&Profile::Server) && !m.section.is_empty()
    }));
    // Manual controls carry no resource and are reported not-reviewed.
    assert!(l1
        .iter()
        .filter(|c| !c.control.as_ref().unwrap().automated)
        .all(|c| matches!(c.resource, crate::suites::Resource::Manual)));
    let e = b.select("level-3-server").unwrap_err().to_string();
    assert!(
        e.contains("accepted: level-1-server, level-2-server"),
        "{e}"
    );
}

/// The benchmark's own numbers: 249 Level 1 Server recommendations, 230 automated and 19
/// manual (CIS Debian Linux 12 Benchmark v1.1.0).
#[test]
fn level_1_server_has_the_benchmarks_249_recommendations() {
    let b = Benchmark::load("debian-12", &BTreeMap::new(), "k").unwrap();
    let l1 = b.select("level-1-server").unwrap();
    let manual = l1
        .iter()
        .filter(|c| !c.control.as_ref().unwrap().automated)
        .count();
    assert_eq!((l1.len(), l1.len() - manual, manual), (249, 230, 19));
    let ids: Vec<&str> = l1.iter().map(|c| c.id.as_str()).collect();
    // Not recommendations of v1.1.0 at Level 1 Server (see test-suites/cis/README.md).
    for id in ["1.5.4", "1.5.5", "6.3.3", "1.1.2.3.1"] {
        assert!(!ids.contains(&id), "{id} is not Level 1 Server");
    }
}

/// A control listed at level 1 by one profile and at level 2 by the other is in the first
/// profile's level 1 and the other's level 2 only.
#[test]
fn a_control_can_have_another_level_in_the_other_profile() {
    let b = Benchmark::load("debian-12", &BTreeMap::new(), "k").unwrap();
    let has = |profile: &str, id: &str| b.select(profile).unwrap().iter().any(|c| c.id == id);
    // 1.1.1.9 (usb-storage): Level 1 Server, Level 2 Workstation.
    assert!(has("level-1-server", "1.1.1.9"));
    assert!(!has("level-1-workstation", "1.1.1.9"));
    assert!(has("level-2-workstation", "1.1.1.9"));
    // 5.1.8 (DisableForwarding): Level 1 Workstation, Level 2 Server.
    assert!(!has("level-1-server", "5.1.8"));
    assert!(has("level-2-server", "5.1.8"));
    assert!(has("level-1-workstation", "5.1.8"));
    // Reports show the level the run's profile lists it at.
    let level_in = |profile: &str, id: &str| {
        b.select(profile)
            .unwrap()
            .into_iter()
            .find(|c| c.id == id)
            .and_then(|c| c.control.map(|m| m.level))
    };
    assert_eq!(level_in("level-2-server", "5.1.8"), Some(2));
    assert_eq!(level_in("level-2-workstation", "5.1.8"), Some(1));
    let shown = crate::suites::builtin::describe("cis-debian-12", "level-2-server").unwrap();
    assert!(
        shown.contains("    5.1.8        L2 automated sshd-config"),
        "{shown}"
    );
    assert!(shown.contains("310 controls, 289 automated and 21 manual"));
    assert!(shown.contains("(results name the suite `cis-debian-12-level-2-server`)"));
    assert!(shown.contains("  5 Access Control (test-suites/cis/debian-12/5-access-control.yml)"));
}

#[test]
fn pipeline_mistakes_name_the_key_and_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let e = |y: &str| load_in(dir.path(), y).unwrap_err().to_string();
    assert!(
        e("{benchmark: ubuntu-24.04}").starts_with(
            "bakery.yml:9:7: verify.suites[1].cis: there is no built-in CIS benchmark \
             `ubuntu-24.04`; built in: debian-12"
        ),
        "{}",
        e("{benchmark: ubuntu-24.04}")
    );
    let msg = e("{benchmark: debian-12, variables: {no_such: 1}}");
    assert!(
        msg.starts_with("bakery.yml:9:7: verify.suites[1].cis.variables.no_such: the benchmark"),
        "{msg}"
    );
    let msg = e("{benchmark: debian-12, profile: level-1}");
    assert!(
        msg.contains("cis.profile: there is no CIS profile `level-1`"),
        "{msg}"
    );
    let msg = e("{benchmark: debian-12, exclude: {'9.9': gone}}");
    assert!(
        msg.contains("cis.exclude: `9.9` is neither a control nor a section"),
        "{msg}"
    );
    let msg = e("{benchmark: debian-12, min-score: 120}");
    assert!(msg.contains("min-score: 120 is not a percentage"), "{msg}");
    let unknown: std::result::Result<CisRef, _> =
        serde_yaml::from_str("{benchmark: debian-12, waiver: w.yml}");
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("unknown field `waiver`"));
}

#[test]
fn exclusions_by_id_and_by_section_are_skipped_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = load_in(
        dir.path(),
        "{benchmark: debian-12, exclude: {'3.1.2': no radios in a VM, '1.1': the image has one disk}}",
    )
    .unwrap();
    let skip = |id: &str| {
        s.checks
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.skip.clone())
    };
    assert_eq!(
        skip("3.1.2").as_deref(),
        Some("excluded: no radios in a VM")
    );
    let in_section = s.checks.iter().find(|c| c.id.starts_with("1.1.")).unwrap();
    assert_eq!(
        in_section.skip.as_deref(),
        Some("excluded with section 1.1: the image has one disk")
    );
    assert!(s
        .checks
        .iter()
        .filter(|c| c.id.starts_with("3.3"))
        .all(|c| c.skip.is_none()));
    assert_eq!(s.name, "cis-debian-12");
}

#[test]
fn waiver_and_attestation_files_are_checked_against_the_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("waivers.yml");
    std::fs::write(
        &w,
        "\"3.1.2\":\n  justification: the VM has no radio\n  expiration_date: 2027-01-31\n\"9.9.9\":\n  justification: x\n",
    )
    .unwrap();
    let e = load_in(dir.path(), "{benchmark: debian-12, waivers: waivers.yml}")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}:4:1: a waiver for `9.9.9`, which is no control of this benchmark (`bakery suites show cis-<benchmark>` lists them)",
            w.display()
        )
    );
    std::fs::write(&w, "\"3.1.2\":\n  expiration_date: 2027-01-31\n").unwrap();
    let e = load_in(dir.path(), "{benchmark: debian-12, waivers: waivers.yml}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `justification`"), "{e}");
    assert!(e.starts_with(&format!("{}:", w.display())), "{e}");
    std::fs::write(
        &w,
        "\"3.1.2\":\n  justification: x\n  expiration_date: soon\n",
    )
    .unwrap();
    let e = load_in(dir.path(), "{benchmark: debian-12, waivers: waivers.yml}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`soon` is not a date; write YYYY-MM-DD"), "{e}");

    let a = dir.path().join("att.yml");
    std::fs::write(
        &a,
        "\"3.1.2\":\n  status: passed\n  justification: looked\n",
    )
    .unwrap();
    let e = load_in(dir.path(), "{benchmark: debian-12, attestations: att.yml}")
        .unwrap_err()
        .to_string();
    assert!(e.contains(":1:1: `3.1.2` is an automated control"), "{e}");
    std::fs::write(
        &a,
        "\"3.1.1\":\n  status: passed\n  justification: IPv6 stays on, decided in ADR-12\n  evidence_url: https://example.org/adr/12\n",
    )
    .unwrap();
    let s = load_in(dir.path(), "{benchmark: debian-12, attestations: att.yml}").unwrap();
    assert_eq!(s.cis.unwrap().attestations.len(), 1);
}

fn control(id: &str, status: Status, automated: bool) -> CheckResult {
    CheckResult {
        id: id.into(),
        title: id.into(),
        kind: "command".into(),
        tags: vec![],
        status,
        expected: None,
        actual: None,
        message: format!("{id} said so"),
        output: String::new(),
        duration: Duration::ZERO,
        attempts: 1,
        experiment: None,
        control: Some(Box::new(Control {
            benchmark: "b".into(),
            section: id[..1].into(),
            level: 1,
            profiles: vec![Profile::Server],
            level_2_profiles: vec![],
            automated,
            cis_controls: vec![],
            rationale: "r".into(),
            remediation: "m".into(),
        })),
    }
}

fn date(s: &str) -> Option<Date> {
    Some(Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()))
}

fn cis_suite() -> CisSuite {
    let waiver = |j: &str, until: &str, run: bool| Waiver {
        justification: j.into(),
        expiration_date: date(until),
        run,
    };
    let attest = |status, until: &str| Attestation {
        status,
        justification: "reviewed by hand".into(),
        evidence_url: Some("https://example.org/t/1".into()),
        expiration_date: date(until),
    };
    CisSuite {
        run: BenchmarkRun {
            id: "debian-12".into(),
            title: "t".into(),
            profile: "level-1-server".into(),
            sections: BTreeMap::new(),
            min_score: None,
            notes: vec![],
        },
        os: Os {
            id: "debian".into(),
            version_id: "12".into(),
        },
        waivers: [
            ("1.1.1".to_string(), waiver("one disk", "2027-01-31", true)),
            ("1.1.2".to_string(), waiver("was fine", "2026-11-30", true)),
            ("1.1.3".to_string(), waiver("not run", "2027-01-31", false)),
            (
                "1.1.4".to_string(),
                waiver("never needed", "2027-01-31", true),
            ),
        ]
        .into_iter()
        .collect(),
        attestations: [
            (
                "2.1.1".to_string(),
                attest(AttestedStatus::Passed, "2027-01-01"),
            ),
            (
                "2.1.2".to_string(),
                attest(AttestedStatus::Failed, "2027-01-01"),
            ),
            (
                "2.1.3".to_string(),
                attest(AttestedStatus::Passed, "2026-06-01"),
            ),
        ]
        .into_iter()
        .collect(),
        today: today(),
    }
}

#[test]
fn waivers_and_attestations_change_the_verdict() {
    let mut sr = SuiteResult {
        suite: "cis-debian-12".into(),
        probe: "vm".into(),
        results: vec![
            control("1.1.1", Status::Failed, true),
            control("1.1.2", Status::Failed, true),
            control("1.1.3", Status::Skipped, true),
            control("1.1.4", Status::Passed, true),
            control("2.1.1", Status::NotReviewed, false),
            control("2.1.2", Status::NotReviewed, false),
            control("2.1.3", Status::NotReviewed, false),
            control("2.1.4", Status::NotReviewed, false),
        ],
        duration: Duration::ZERO,
        benchmark: None,
    };
    let before = crate::gate::evaluate(std::slice::from_ref(&sr));
    assert_eq!(before.reasons.len(), 2);
    apply(&mut sr, &cis_suite());
    let r = |id: &str| sr.results.iter().find(|r| r.id == id).unwrap();
    assert_eq!(r("1.1.1").status, Status::Waived);
    assert_eq!(
        r("1.1.1").message,
        "waived: one disk (until 2027-01-31); the control failed: 1.1.1 said so"
    );
    // An expired waiver no longer applies, and the run says so.
    assert_eq!(r("1.1.2").status, Status::Failed);
    assert!(r("1.1.2")
        .message
        .ends_with("(its waiver expired on 2026-11-30)"));
    assert_eq!(r("1.1.3").status, Status::Waived);
    assert_eq!(r("1.1.4").status, Status::Passed);
    assert_eq!(r("2.1.1").status, Status::Passed);
    assert_eq!(
        r("2.1.1").message,
        "attested passed: reviewed by hand; evidence: https://example.org/t/1 (until 2027-01-01)"
    );
    assert_eq!(r("2.1.2").status, Status::Failed);
    assert_eq!(r("2.1.3").status, Status::NotReviewed);
    assert_eq!(r("2.1.4").status, Status::NotReviewed);
    let notes = &sr.benchmark.as_ref().unwrap().notes;
    assert_eq!(
        notes,
        &vec![
            "the waiver for 1.1.2 expired on 2026-11-30 and no longer applies".to_string(),
            "the attestation for 2.1.3 expired on 2026-06-01; the control is not reviewed"
                .to_string()
        ]
    );
    let after = crate::gate::evaluate(std::slice::from_ref(&sr));
    assert_eq!(
        after.reasons,
        vec![
            "cis-debian-12/1.1.2 failed on vm: 1.1.2 said so (its waiver expired on 2026-11-30)",
            "cis-debian-12/2.1.2 failed on vm: attested failed: reviewed by hand; evidence: \
             https://example.org/t/1 (until 2027-01-01)"
        ]
    );
}

#[test]
fn other_systems_are_refused_by_name() {
    let cis = cis_suite();
    let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n";
    assert!(check_os(&cis, debian).is_ok());
    let ubuntu = "PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n";
    let e = check_os(&cis, ubuntu).unwrap_err();
    assert_eq!(e.exit_code(), crate::error::EXIT_CONFIG);
    let e = e.to_string();
    assert!(e.contains("applies to debian 12 only, and the probe runs Ubuntu 24.04.1 LTS (ID=ubuntu, VERSION_ID=24.04)"), "{e}");
    let eleven = debian.replace("VERSION_ID=\"12\"", "VERSION_ID=\"11\"");
    assert!(check_os(&cis, &eleven).is_err());
}
