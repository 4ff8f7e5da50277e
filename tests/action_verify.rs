//! The action in `verify` mode on a real QEMU probe, as a pull request runs it: the check run
//! is created when verification starts and completed with one annotation per failed check
//! (validated against GitHub's REST description), the job summary and outputs say what failed
//! with expected and actual values, and the JUnit file reads in junitparser.

mod action_support;
#[path = "common/mod.rs"]
mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use action_support::github_server::{Behaviour, FakeGitHub};
use action_support::openapi::Spec;
use action_support::runner::{Job, Where};
use serde_json::json;

const PR_HEAD: &str = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff";

const SUITE: &str = "\
# Two checks a stock Debian 12 probe passes, two it fails.
name: probe
checks:
  - id: sshd-running
    title: the SSH server runs
    service: { name: ssh, running: true }

  - id: nginx-installed
    title: nginx is installed
    package: { name: nginx-light, installed: true }

  - id: os-is-debian
    title: the OS is Debian
    command:
      run: . /etc/os-release && echo $ID
      stdout: debian

  - id: motd-greets
    title: the message of the day greets the team
    command:
      run: cat /etc/motd
      stdout: { contains: Baked by Bakery }
";

#[test]
fn verify_on_a_pull_request_reports_a_check_run_summary_outputs_and_junit() {
    let _vm = common::vm_lock();
    let data = common::data_dir("action-verify");
    let base = common::base_image(&data);
    let server = FakeGitHub::start(Arc::new(Spec::load()), Behaviour::Writable);

    let mut job = Job::new();
    let ws = job.workspace();
    std::fs::create_dir_all(ws.join("suites")).unwrap();
    std::fs::write(ws.join("suites/probe.yml"), SUITE).unwrap();
    std::fs::write(
        ws.join("bakery.yml"),
        "source:\n  local: debian-12\nimage:\n  name: web-{{timestamp}}\nverify:\n  suites: [suites/probe.yml]\n",
    )
    .unwrap();
    job.set("GITHUB_API_URL", &server.url)
        .set("GITHUB_EVENT_NAME", "pull_request")
        .set("GITHUB_REF", "refs/pull/12/merge")
        .event(&json!({"pull_request": {"number": 12, "head": {"sha": PR_HEAD}}}))
        .input("mode", "verify")
        .input("image", &base)
        .input("github-token", "ghs_verifyToken99")
        .input("junit", "reports/junit.xml")
        .input("args", &format!("--data-dir '{}'", data.display()));
    let step = job.run(&Where::Host);
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}\n--- summary\n{}",
        step.stdout, step.stderr, step.summary
    );

    // The gate failed: exit 1, outputs say so.
    assert_eq!(step.code, 1);
    assert_eq!(step.output("result"), "failed");
    assert_eq!(step.output("image-id"), base);
    assert_eq!(step.output("promoted"), "false");
    assert_eq!(step.output("junit-path"), "reports/junit.xml");
    assert_eq!(step.output("summary-path"), "reports/summary.md");
    assert_eq!(
        std::fs::read_to_string(ws.join("reports/summary.md")).unwrap(),
        step.summary
    );

    // The check run: created at verification start, then completed with two annotations on the
    // lines of the suite file that define the failed checks.
    let requests = server.requests();
    for r in &requests {
        assert!(
            r.problems.is_empty(),
            "{} {}: {:#?}",
            r.method,
            r.path,
            r.problems
        );
    }
    let ops: Vec<_> = requests
        .iter()
        .map(|r| r.operation.clone().unwrap_or_default())
        .collect();
    assert_eq!(ops, ["checks/create", "checks/update"]);
    let create = requests[0].body.as_ref().unwrap();
    assert_eq!(create["head_sha"], PR_HEAD);
    assert_eq!(create["name"], "bakery");
    assert_eq!(create["external_id"], base.as_str());
    let done = requests[1].body.as_ref().unwrap();
    assert_eq!(done["conclusion"], "failure");
    assert_eq!(
        done["output"]["title"],
        format!("failed: 2 of 4 checks failed on {base}")
    );
    let annotations = done["output"]["annotations"].as_array().unwrap();
    let got: Vec<(String, u64, String)> = annotations
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["start_line"].as_u64().unwrap(),
                a["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "suites/probe.yml".to_string(),
                8,
                "probe/nginx-installed failed".to_string()
            ),
            (
                "suites/probe.yml".to_string(),
                18,
                "probe/motd-greets failed".to_string()
            ),
        ]
    );
    let motd = annotations[1]["message"].as_str().unwrap();
    assert!(
        motd.starts_with("the message of the day greets the team\nexpected: "),
        "{motd}"
    );
    assert!(motd.contains("Baked by Bakery"), "{motd}");
    let summary = done["output"]["summary"].as_str().unwrap();
    assert!(summary.contains("### Failed checks (2)"), "{summary}");

    // The job summary: result, image, failed checks with expected and actual, the suite's
    // table, the stage timings.
    let s = &step.summary;
    assert!(
        s.contains(&format!(
            "## ❌ Bakery `verify`: failed: 2 of 4 checks failed on {base}"
        )),
        "{s}"
    );
    assert!(s.contains(&format!("| Image | `{base}` (")), "{s}");
    assert!(s.contains("| JUnit | `reports/junit.xml` |"), "{s}");
    assert!(s.contains("### Failed checks (2)"), "{s}");
    let row = s
        .lines()
        .find(|l| l.starts_with("| probe | `motd-greets`"))
        .expect("a row for motd-greets");
    assert!(row.contains("Baked by Bakery"), "expected value in {row}");
    let row = s
        .lines()
        .find(|l| l.starts_with("| probe | `nginx-installed`"))
        .expect("a row for nginx-installed");
    assert_eq!(row.matches(" | ").count(), 3, "four cells: {row}");
    assert!(s.contains("### probe on "), "{s}");
    assert!(s.contains("2 passed, 2 failed, 0 errors, 0 skipped"), "{s}");
    assert!(s.contains("| ✅ | `sshd-running` |"), "{s}");
    assert!(
        s.contains("### Stage timings") && s.contains("| verify | "),
        "{s}"
    );

    // Workflow annotations on the same lines, and the stage as a log group.
    let errors = step.commands("error");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "::error file=suites/probe.yml,line=8,title=probe/nginx-installed failed::"
        ),
        "{}",
        errors[0]
    );
    assert!(
        errors[1]
            .starts_with("::error file=suites/probe.yml,line=18,title=probe/motd-greets failed::"),
        "{}",
        errors[1]
    );
    assert!(step.stderr.contains("::group::verify") && step.stderr.contains("::endgroup::"));

    // The JUnit file, as junitparser reads it.
    let junit = action_support::junitparser_read(&ws.join("reports/junit.xml"));
    let suites = junit.as_array().unwrap();
    assert_eq!(suites.len(), 1, "{junit}");
    assert!(
        suites[0]["name"].as_str().unwrap().starts_with("probe @ "),
        "{junit}"
    );
    assert_eq!(
        (
            suites[0]["tests"].as_u64(),
            suites[0]["failures"].as_u64(),
            suites[0]["errors"].as_u64()
        ),
        (Some(4), Some(2), Some(0)),
        "{junit}"
    );
    let cases = suites[0]["cases"].as_array().unwrap();
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| {
            c["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "Failure")
        })
        .map(|c| {
            (
                c["classname"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["results"][0]["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 2, "{junit}");
    assert_eq!(failed[0].0, "probe");
    assert!(failed[0].1.starts_with("nginx-installed"), "{failed:?}");
    assert!(failed[1].1.starts_with("motd-greets"), "{failed:?}");
    assert!(
        failed[1].2.starts_with("expected ")
            && failed[1].2.contains("Baked by Bakery")
            && failed[1].2.contains(", got "),
        "{failed:?}"
    );
    for c in cases {
        assert!(c["time"].as_f64().is_some(), "{c}");
    }

    // The image is tagged rejected and the run left nothing behind.
    assert_eq!(
        common::image(&data, &base)["tags"]["bakery:status"],
        "rejected"
    );
    common::assert_nothing_left(&data);
}

/// The runner cancels a job with SIGINT (then SIGTERM 7.5 s later, then a kill): the action
/// releases its probe, says `cancelled` in its outputs, and completes the check run as
/// cancelled.
#[test]
fn sigint_during_verification_releases_the_probe_and_cancels_the_check_run() {
    let _vm = common::vm_lock();
    let data = common::data_dir("action-verify-sigint");
    let base = common::base_image(&data);
    let server = FakeGitHub::start(Arc::new(Spec::load()), Behaviour::Writable);
    let mut job = Job::new();
    let ws = job.workspace();
    std::fs::create_dir_all(ws.join("suites")).unwrap();
    std::fs::write(ws.join("suites/probe.yml"), SUITE).unwrap();
    std::fs::write(
        ws.join("bakery.yml"),
        "source:\n  local: debian-12\nimage:\n  name: web-{{timestamp}}\nverify:\n  suites: [suites/probe.yml]\n",
    )
    .unwrap();
    job.set("GITHUB_API_URL", &server.url)
        .input("mode", "verify")
        .input("image", &base)
        .input("github-token", "ghs_cancelToken")
        .input("args", &format!("--data-dir '{}'", data.display()));
    let mut child = job
        .command(&Where::Host)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Cancel once verification has started (the check run exists) and a probe is booting.
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.requests().is_empty() || common::processes_under(&data).is_empty() {
        assert!(Instant::now() < deadline, "verification did not start");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the action ended before it was cancelled"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on the child this test spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let step = job.step(out);
    eprintln!("--- stdout\n{}\n--- stderr\n{}", step.stdout, step.stderr);
    assert_eq!(step.code, 130);
    assert_eq!(step.output("result"), "cancelled");
    assert_eq!(step.output("promoted"), "false");
    assert!(
        step.summary.contains("## ⏹️ Bakery `verify`: cancelled"),
        "{}",
        step.summary
    );
    let warnings = step.commands("warning");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("title=Bakery%3A cancelled::interrupted by SIGINT")),
        "{warnings:?}"
    );
    let requests = server.requests();
    for r in &requests {
        assert!(
            r.problems.is_empty(),
            "{} {}: {:#?}",
            r.method,
            r.path,
            r.problems
        );
    }
    let ops: Vec<_> = requests
        .iter()
        .map(|r| r.operation.clone().unwrap_or_default())
        .collect();
    assert_eq!(ops, ["checks/create", "checks/update"]);
    assert_eq!(
        requests[1].body.as_ref().unwrap()["conclusion"],
        "cancelled"
    );
    common::assert_nothing_left(&data);
}
