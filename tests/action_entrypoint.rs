//! The action's entrypoint (`bakery action`) run on this machine as GitHub's runner runs a
//! container action: `INPUT_*`, `GITHUB_*`, file-command files, a workspace, a home. The same
//! scenarios run inside the container image in tests/action_container.rs. Check runs go to a
//! stand-in for GitHub's API that validates each request against GitHub's REST description.

mod action_support;

use std::sync::{Arc, OnceLock};

use action_support::github_server::{Behaviour, FakeGitHub};
use action_support::openapi::Spec;
use action_support::runner::{Job, Where};
use action_support::{scenarios, store_image};
use serde_json::json;

#[test]
fn configuration_error() {
    scenarios::configuration_error(&Where::Host);
}

#[test]
fn bad_inputs() {
    scenarios::bad_inputs(&Where::Host);
}

#[test]
fn release_promotes_the_verified_image() {
    scenarios::release_promotes_the_verified_image(&Where::Host);
}

#[test]
fn release_refuses_an_image_that_did_not_pass() {
    scenarios::release_refuses_an_image_that_did_not_pass(&Where::Host);
}

#[test]
fn validate() {
    scenarios::validate(&Where::Host);
}

#[test]
fn outdated() {
    scenarios::outdated(&Where::Host);
}

#[test]
fn post_step_releases_leftovers() {
    scenarios::post_step_releases_leftovers(&Where::Host);
}

fn spec() -> Arc<Spec> {
    static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
    SPEC.get_or_init(|| Arc::new(Spec::load())).clone()
}

const PR_HEAD: &str = "feedfacefeedfacefeedfacefeedfacefeedface";

/// A pull-request job whose verification starts and then cannot launch its probe (the image
/// has no disk): no virtual machine is needed to see the check run's whole life.
fn pr_job(api: &str) -> Job {
    let mut job = Job::new();
    let data = job.data_dir();
    std::fs::write(
        job.workspace().join("smoke.yml"),
        "checks:\n  - id: true\n    command: { run: \"true\" }\n",
    )
    .unwrap();
    std::fs::write(
        job.workspace().join("bakery.yml"),
        "source:\n  local: debian-12\nimage:\n  name: web-{{timestamp}}\nverify:\n  suites: [smoke.yml]\n",
    )
    .unwrap();
    store_image(
        &data,
        "ami-00000000000000d15",
        "diskless",
        "2026-11-22T00:00:00Z",
        &[],
    );
    job.set("GITHUB_API_URL", api)
        .set("GITHUB_EVENT_NAME", "pull_request")
        .set("GITHUB_REF", "refs/pull/7/merge")
        .event(&json!({"pull_request": {"number": 7, "head": {"sha": PR_HEAD}}}))
        .input("mode", "verify")
        .input("image", "ami-00000000000000d15")
        .input("github-token", "ghs_prToken1234")
        .input("check-name", "image / web");
    job
}

#[test]
fn check_run_is_created_when_verification_starts_and_completed_on_error() {
    let server = FakeGitHub::start(spec(), Behaviour::Writable);
    let step = pr_job(&server.url).run(&Where::Host);
    assert_eq!(step.code, 3, "{step:#?}");
    assert_eq!(step.output("result"), "error");
    let requests = server.requests();
    for r in &requests {
        assert!(
            r.problems.is_empty(),
            "{} {}: {:#?}",
            r.method,
            r.path,
            r.problems
        );
        assert_eq!(r.authorization.as_deref(), Some("Bearer ghs_prToken1234"));
    }
    let ops: Vec<_> = requests
        .iter()
        .map(|r| r.operation.clone().unwrap_or_default())
        .collect();
    assert_eq!(ops, ["checks/create", "checks/update"], "{requests:#?}");
    let create = requests[0].body.as_ref().unwrap();
    assert_eq!(requests[0].path, "/repos/octo-org/images/check-runs");
    assert_eq!(create["name"], "image / web");
    assert_eq!(
        create["head_sha"], PR_HEAD,
        "a pull request's check belongs on its head commit"
    );
    assert_eq!(create["status"], "in_progress");
    assert_eq!(
        create["details_url"],
        "https://github.com/octo-org/images/actions/runs/987654321"
    );
    let done = requests[1].body.as_ref().unwrap();
    assert_eq!(requests[1].path, "/repos/octo-org/images/check-runs/4242");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["conclusion"], "failure");
    let title = done["output"]["title"].as_str().unwrap();
    assert!(title.starts_with("error: "), "{title}");
    assert!(
        done["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("### Error"),
        "{done}"
    );
    // The stage was a ::group:: and the check-run note landed inside it.
    assert!(step.stderr.contains("::group::verify"), "{}", step.stderr);
    assert!(
        step.stderr
            .contains("check run `image / web` created (id 4242)"),
        "{}",
        step.stderr
    );
    assert!(
        step.stderr
            .contains("check run `image / web` completed: error"),
        "{}",
        step.stderr
    );
    assert!(step.commands("warning").is_empty(), "{}", step.stdout);
    assert!(!step.stderr.contains("ghs_prToken1234") && !step.summary.contains("ghs_prToken1234"));
}

#[test]
fn a_read_only_token_falls_back_to_the_job_summary_with_a_warning() {
    let server = FakeGitHub::start(spec(), Behaviour::ReadOnly);
    let step = pr_job(&server.url).run(&Where::Host);
    assert_eq!(step.code, 3, "{step:#?}");
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "one refused create, no update: {requests:#?}"
    );
    assert_eq!(requests[0].status, 403);
    assert!(
        requests[0].problems.is_empty(),
        "{:#?}",
        requests[0].problems
    );
    let warnings = step.commands("warning");
    assert_eq!(warnings.len(), 1, "{}", step.stdout);
    assert!(
        warnings[0].contains("may not create check runs"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("HTTP 403"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("pull request from a fork"),
        "{}",
        warnings[0]
    );
    assert!(
        step.summary
            .contains("> [!WARNING]\n> The github-token may not create check runs"),
        "{}",
        step.summary
    );
    assert!(step.summary.contains("read-only token"), "{}", step.summary);
}

#[test]
fn without_a_token_there_is_no_check_run_and_no_warning() {
    let server = FakeGitHub::start(spec(), Behaviour::Writable);
    let mut job = pr_job(&server.url);
    job.input("github-token", "");
    let step = job.run(&Where::Host);
    assert_eq!(step.code, 3, "{step:#?}");
    assert!(server.requests().is_empty());
    assert!(step.commands("warning").is_empty(), "{}", step.stdout);
    assert!(
        step.stderr.contains("no github-token input: no check run"),
        "{}",
        step.stderr
    );
}

#[test]
fn bakery_outdated_on_the_command_line() {
    let job = Job::new();
    let data = job.data_dir();
    std::fs::write(
        job.workspace().join("smoke.yml"),
        "checks:\n  - id: true\n    command: { run: \"true\" }\n",
    )
    .unwrap();
    std::fs::write(
        job.workspace().join("bakery.yml"),
        "source:\n  image: ami-000000000000000f2\nimage:\n  name: web\nverify:\n  suites: [smoke.yml]\n",
    )
    .unwrap();
    store_image(
        &data,
        "ami-000000000000000f2",
        "base-2",
        "2026-11-02T00:00:00Z",
        &[],
    );
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_bakery"))
            .args(["outdated", "-f"])
            .arg(job.workspace().join("bakery.yml"))
            .env("BAKERY_DATA_DIR", &data)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "true\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image has been promoted yet"));
    store_image(
        &data,
        "ami-000000000000000e2",
        "web",
        "2026-11-03T00:00:00Z",
        &[
            ("bakery:status", "promoted"),
            ("bakery:source", "ami-000000000000000f2"),
        ],
    );
    let out = run();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "false\n", "{out:?}");
    assert!(
        !data.join("runs").read_dir().unwrap().any(|_| true),
        "no ledger left behind"
    );
}
