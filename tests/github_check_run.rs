//! The check-run client (src/report/github.rs, octocrab) against a stand-in for GitHub's API on
//! 127.0.0.1 that checks every request against GitHub's published REST description
//! (`@octokit/openapi`): method, path, required fields, types, enums, the summary's length and
//! the 50-annotation limit.

mod action_support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use action_support::github_server::{raw_request, Behaviour, FakeGitHub, Recorded};
use action_support::openapi::Spec;
use bakery::report::github::{
    check_annotations, Conclusion, GitHub, GitHubError, MAX_SUMMARY_BYTES,
};
use bakery::suites::{CheckResult, Status, SuiteResult};
use serde_json::json;

fn spec() -> Arc<Spec> {
    static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
    SPEC.get_or_init(|| Arc::new(Spec::load())).clone()
}

fn failing_suite(n: usize) -> SuiteResult {
    SuiteResult {
        suite: "cis".into(),
        probe: "i-0123 (ami-0123)".into(),
        results: (0..n)
            .map(|i| CheckResult {
                id: format!("cis-{i}"),
                title: format!("control {i} holds"),
                kind: "file".into(),
                tags: vec![],
                status: if i % 7 == 3 {
                    Status::Error
                } else {
                    Status::Failed
                },
                expected: Some(format!("mode: 0600 ({i})")),
                actual: Some("mode: 0644".into()),
                message: format!("control {i} did not hold"),
                output: "x".repeat(100),
                duration: Duration::from_millis(3),
                attempts: 1,
                control: None,
                experiment: None,
            })
            .chain(std::iter::once(CheckResult {
                id: "ok".into(),
                title: "passes".into(),
                kind: "command".into(),
                tags: vec![],
                status: Status::Passed,
                expected: None,
                actual: None,
                message: String::new(),
                output: String::new(),
                duration: Duration::ZERO,
                attempts: 1,
                control: None,
                experiment: None,
            }))
            .collect(),
        duration: Duration::from_secs(1),
        benchmark: None,
    }
}

fn assert_valid(requests: &[Recorded]) {
    for r in requests {
        assert!(
            r.problems.is_empty(),
            "{} {} does not match GitHub's description: {:#?}",
            r.method,
            r.path,
            r.problems
        );
    }
}

#[test]
fn a_check_run_is_created_then_completed_with_annotations_in_batches_of_50() {
    let server = FakeGitHub::start(spec(), Behaviour::Writable);
    let gh = GitHub::new(&server.url, "ghs_writable", "octo-org/images").unwrap();
    let id = gh
        .create_check_run(
            "bakery",
            "abc123",
            Some("https://github.com/octo-org/images/actions/runs/1"),
            "ami-0123",
            "verifying ami-0123",
            "running",
        )
        .unwrap();
    assert_eq!(id, 4242, "the id GitHub answered");

    let results = [failing_suite(120)];
    let annotations = check_annotations(&results, &|suite, id| {
        (format!("suites/{suite}.yml"), id.len() as u32)
    });
    assert_eq!(
        annotations.len(),
        120,
        "one per failed or errored check, none for the passed one"
    );
    let huge_summary = "é".repeat(40_000); // 80,000 bytes: must be cut to fit
    let sent = gh
        .complete_check_run(
            id,
            Conclusion::Failure,
            "failed: 120 of 121 checks failed",
            &huge_summary,
            &annotations,
        )
        .unwrap();
    assert_eq!(sent, 3);

    let requests = server.requests();
    assert_valid(&requests);
    let ops: Vec<_> = requests
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.operation.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("POST", "/repos/octo-org/images/check-runs", "checks/create"),
            (
                "PATCH",
                "/repos/octo-org/images/check-runs/4242",
                "checks/update"
            ),
            (
                "PATCH",
                "/repos/octo-org/images/check-runs/4242",
                "checks/update"
            ),
            (
                "PATCH",
                "/repos/octo-org/images/check-runs/4242",
                "checks/update"
            ),
        ]
    );
    for r in &requests {
        assert_eq!(r.authorization.as_deref(), Some("Bearer ghs_writable"));
    }
    let create = requests[0].body.as_ref().unwrap();
    assert_eq!(create["name"], "bakery");
    assert_eq!(create["head_sha"], "abc123");
    assert_eq!(create["status"], "in_progress");
    assert_eq!(create["external_id"], "ami-0123");
    assert_eq!(
        create["details_url"],
        "https://github.com/octo-org/images/actions/runs/1"
    );

    let batches: Vec<&serde_json::Value> = requests[1..]
        .iter()
        .map(|r| r.body.as_ref().unwrap())
        .collect();
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| b["output"]["annotations"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [50, 50, 20]);
    // Only the last request completes the run, so every annotation is in before it is done.
    assert_eq!(batches[0]["status"], "in_progress");
    assert_eq!(batches[1]["status"], "in_progress");
    assert!(batches[0].get("conclusion").is_none());
    assert_eq!(batches[2]["status"], "completed");
    assert_eq!(batches[2]["conclusion"], "failure");
    assert!(
        chrono::DateTime::parse_from_rfc3339(batches[2]["completed_at"].as_str().unwrap()).is_ok()
    );
    let titles: Vec<String> = batches
        .iter()
        .flat_map(|b| b["output"]["annotations"].as_array().unwrap().iter())
        .map(|a| a["title"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..120)
        .map(|i| {
            format!(
                "cis/cis-{i} {}",
                if i % 7 == 3 {
                    "could not be evaluated"
                } else {
                    "failed"
                }
            )
        })
        .collect();
    assert_eq!(titles, expected, "every failed check once, in order");
    let first = &batches[0]["output"]["annotations"][0];
    assert_eq!(first["path"], "suites/cis.yml");
    assert_eq!(first["start_line"], 5);
    assert_eq!(first["end_line"], 5);
    assert_eq!(first["annotation_level"], "failure");
    assert_eq!(
        first["message"],
        "control 0 holds\nexpected: mode: 0600 (0)\nactual:   mode: 0644"
    );
    for b in &batches {
        let summary = b["output"]["summary"].as_str().unwrap();
        assert!(summary.len() <= MAX_SUMMARY_BYTES, "{}", summary.len());
        assert!(summary.ends_with("[… cut to fit GitHub's limit …]"));
        assert_eq!(b["output"]["title"], "failed: 120 of 121 checks failed");
    }
}

#[test]
fn a_passing_run_without_annotations_is_one_update() {
    let server = FakeGitHub::start(spec(), Behaviour::Writable);
    let gh = GitHub::new(&server.url, "t", "octo-org/images").unwrap();
    let id = gh
        .create_check_run("bakery", "abc", None, "ami-1", "verifying", "…")
        .unwrap();
    assert_eq!(
        gh.complete_check_run(id, Conclusion::Success, "passed", "all good", &[])
            .unwrap(),
        1
    );
    let requests = server.requests();
    assert_valid(&requests);
    assert_eq!(requests.len(), 2);
    let done = requests[1].body.as_ref().unwrap();
    assert_eq!(done["conclusion"], "success");
    assert!(done["output"].get("annotations").is_none());
    assert!(requests[0]
        .body
        .as_ref()
        .unwrap()
        .get("details_url")
        .is_none());
}

#[test]
fn a_read_only_token_is_told_apart() {
    let server = FakeGitHub::start(spec(), Behaviour::ReadOnly);
    let gh = GitHub::new(&server.url, "ghs_readonly", "octo-org/images").unwrap();
    let e = gh
        .create_check_run("bakery", "abc", None, "ami-1", "verifying", "…")
        .unwrap_err();
    assert_eq!(
        e,
        GitHubError::Forbidden {
            status: 403,
            message: "Resource not accessible by integration".into()
        }
    );
    assert_valid(&server.requests());
}

#[test]
fn an_unreachable_api_is_an_error_not_a_hang() {
    // A port nothing listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gh = GitHub::new(&format!("http://127.0.0.1:{port}"), "t", "octo-org/images").unwrap();
    let e = gh
        .create_check_run("bakery", "abc", None, "ami-1", "verifying", "…")
        .unwrap_err();
    assert!(matches!(e, GitHubError::Other(_)), "{e:?}");
    assert!(GitHub::new("http://127.0.0.1:1", "t", "not-a-repo").is_err());
}

/// The stand-in is only worth something if it refuses what GitHub would refuse.
#[test]
fn the_stand_in_refuses_requests_that_do_not_match_the_description() {
    let server = FakeGitHub::start(spec(), Behaviour::Writable);
    let annotation = json!({"path": "a.yml", "start_line": 1, "end_line": 1, "annotation_level": "failure", "message": "m"});
    let cases = [
        // 51 annotations in one request.
        (
            "PATCH",
            "/repos/o/r/check-runs/1",
            json!({"status": "in_progress", "output": {"title": "t", "summary": "s", "annotations": vec![annotation.clone(); 51]}}),
            422,
            "more than maxItems 50",
        ),
        // No head_sha.
        (
            "POST",
            "/repos/o/r/check-runs",
            json!({"name": "bakery"}),
            422,
            "`head_sha` is missing",
        ),
        // An annotation without its required fields.
        (
            "POST",
            "/repos/o/r/check-runs",
            json!({"name": "b", "head_sha": "a", "output": {"title": "t", "summary": "s", "annotations": [{"path": "a"}]}}),
            422,
            "`start_line` is missing",
        ),
        // A conclusion GitHub does not know.
        (
            "PATCH",
            "/repos/o/r/check-runs/1",
            json!({"conclusion": "passed"}),
            422,
            "is not one of",
        ),
        // Completed without a conclusion (the update's anyOf).
        (
            "PATCH",
            "/repos/o/r/check-runs/1",
            json!({"status": "completed"}),
            422,
            "anyOf",
        ),
        // A summary over 65,535 characters.
        (
            "PATCH",
            "/repos/o/r/check-runs/1",
            json!({"output": {"title": "t", "summary": "x".repeat(65_536)}}),
            422,
            "maxLength 65535",
        ),
        // A field the description does not have.
        (
            "POST",
            "/repos/o/r/check-runs",
            json!({"name": "b", "head_sha": "a", "sha": "typo"}),
            422,
            "`sha` is not in GitHub's description",
        ),
        // A check run id that is not a number.
        (
            "PATCH",
            "/repos/o/r/check-runs/abc",
            json!({"status": "in_progress"}),
            422,
            "not an integer",
        ),
        // A method GitHub does not accept there, and a path it does not serve.
        (
            "DELETE",
            "/repos/o/r/check-runs/1",
            json!({}),
            404,
            "does not accept DELETE",
        ),
        (
            "POST",
            "/repos/o/r/check-run",
            json!({"name": "b", "head_sha": "a"}),
            404,
            "no such path",
        ),
    ];
    for (i, (method, path, body, status, problem)) in cases.iter().enumerate() {
        assert_eq!(
            raw_request(&server.url, method, path, body),
            *status,
            "case {i}: {method} {path}"
        );
        let recorded = &server.requests()[i];
        assert!(
            recorded.problems.iter().any(|p| p.contains(problem)),
            "case {i}: expected a problem containing `{problem}`, got {:#?}",
            recorded.problems
        );
    }
    // And a well-formed request passes.
    let ok = json!({"name": "b", "head_sha": "a", "status": "in_progress", "output": {"title": "t", "summary": "s", "annotations": vec![annotation; 50]}});
    assert_eq!(
        raw_request(&server.url, "POST", "/repos/o/r/check-runs", &ok),
        201
    );
}
