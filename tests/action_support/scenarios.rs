//! Runs of the action's entrypoint that need no virtual machine, each with its assertions.
//! `tests/action_entrypoint.rs` runs them with the host binary and `tests/action_container.rs`
//! inside the action's container image.

use std::path::{Path, PathBuf};

use bakery::cloud::local::store::Store;
use bakery::cloud::{COMMIT_TAG, STATUS_TAG};
use bakery::ledger::{Entry, LedgerFile, Resource};

use super::runner::{Job, Step, Where};
use super::{store_image, stored_tags};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKEN: &str = "ghs_0nlyF0rTh1sTestRun";

/// A pipeline of the local provider that promotes through `/golden/web/latest`.
fn write_pipeline(ws: &Path, source: &str) {
    std::fs::write(
        ws.join("smoke.yml"),
        "checks:\n  - id: true\n    command: { run: \"true\" }\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("bakery.yml"),
        format!(
            "provider: local\nsource:\n  image: {source}\nimage:\n  name: web-{{{{timestamp}}}}\n  tags:\n    app: web\nverify:\n  suites: [smoke.yml]\npromote:\n  pointer: /golden/web/latest\n  keep: 3\n"
        ),
    )
    .unwrap();
}

fn assert_no_secret(step: &Step) {
    let mask = format!("::add-mask::{TOKEN}");
    assert_eq!(
        step.stdout.lines().next(),
        Some(mask.as_str()),
        "the token is masked before anything else is printed:\n{}",
        step.stdout
    );
    let rest: String = step.stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
    for (what, text) in [
        ("stdout", &rest),
        ("stderr", &step.stderr),
        ("summary", &step.summary),
    ] {
        assert!(
            !text.contains(TOKEN),
            "the token leaked into {what}:\n{text}"
        );
    }
}

/// A pipeline file with a YAML mistake: exit 2, `result=error`, an `::error` annotation on the
/// file's line and column, the error in the job summary, the token masked.
pub fn configuration_error(place: &Where) {
    let mut job = Job::new();
    std::fs::write(
        job.workspace().join("bakery.yml"),
        "source:\n  local: debian-12\n image:\n  name: x\n",
    )
    .unwrap();
    job.input("pipeline", "bakery.yml")
        .input("mode", "run")
        .input("github-token", TOKEN)
        .input("promote", "true")
        .input("image", "")
        .input("args", "");
    let step = job.run(place);
    assert_eq!(step.code, 2, "{step:#?}");
    assert_no_secret(&step);
    assert_eq!(step.output("result"), "error");
    assert_eq!(step.output("image-id"), "");
    assert_eq!(step.output("promoted"), "false");
    assert_eq!(step.output("junit-path"), "");
    assert_eq!(step.output("summary-path"), "bakery-results/summary.md");
    let errors = step.commands("error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "::error file=bakery.yml,line=3,col=2,title=Bakery%3A error::bakery.yml:3:2: "
        ),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("indentation"), "{}", errors[0]);
    assert!(
        step.summary
            .contains("## 💥 Bakery `run`: error: bakery.yml:3:2:"),
        "{}",
        step.summary
    );
    assert!(
        step.summary.contains("| Result | **error** |"),
        "{}",
        step.summary
    );
    assert!(
        step.summary
            .contains("### Error\n\n```text\nbakery.yml:3:2:"),
        "{}",
        step.summary
    );
    let file = std::fs::read_to_string(job.workspace().join("bakery-results/summary.md")).unwrap();
    assert_eq!(
        file, step.summary,
        "summary-path holds the job summary's text"
    );
    assert_eq!(
        step.state.get("bakery_post").map(String::as_str),
        Some("cleanup"),
        "the main step leaves state for the post step"
    );
}

/// Inputs the action does not accept name the input.
pub fn bad_inputs(place: &Where) {
    let mut job = Job::new();
    job.input("mode", "deploy");
    let step = job.run(place);
    assert_eq!(step.code, 2, "{step:#?}");
    assert_eq!(step.output("result"), "error");
    let errors = step.commands("error");
    assert!(
        errors[0].contains("input `mode`: `deploy` is not a mode"),
        "{errors:?}"
    );

    let mut job = Job::new();
    write_pipeline(&job.workspace(), "ami-00000000000000001");
    job.input("mode", "bake").input("args", "--no-such-flag");
    let step = job.run(place);
    assert_eq!(step.code, 2, "{step:#?}");
    assert!(
        step.commands("error")[0].contains("--no-such-flag"),
        "{}",
        step.stdout
    );
}

/// On a release tag, `promote` without an image promotes the newest image verified for the
/// tag's commit, not a rejected one and not another commit's.
pub fn release_promotes_the_verified_image(place: &Where) {
    let mut job = Job::new();
    let data = job.data_dir();
    write_pipeline(&job.workspace(), "ami-00000000000000001");
    let tags = |commit: &str, status: &str| {
        vec![
            (COMMIT_TAG, commit.to_string()),
            (STATUS_TAG, status.to_string()),
            ("app", "web".to_string()),
        ]
    };
    let put = |id: &str, created: &str, t: Vec<(&str, String)>| {
        let t: Vec<(&str, &str)> = t.iter().map(|(k, v)| (*k, v.as_str())).collect();
        store_image(&data, id, &format!("web-{id}"), created, &t)
    };
    put(
        "ami-0000000000000000a",
        "2026-11-20T10:00:00Z",
        tags(SHA, "verified"),
    );
    put(
        "ami-0000000000000000b",
        "2026-11-21T10:00:00Z",
        tags(SHA, "rejected"),
    );
    put(
        "ami-0000000000000000c",
        "2026-11-22T10:00:00Z",
        tags("ffff", "verified"),
    );
    job.set("GITHUB_REF", "refs/tags/v1.2.0")
        .set("GITHUB_EVENT_NAME", "push")
        .input("mode", "promote")
        .input("pipeline", "bakery.yml");
    let step = job.run(place);
    assert_eq!(step.code, 0, "{step:#?}");
    assert_eq!(step.output("result"), "passed");
    assert_eq!(step.output("promoted"), "true");
    assert_eq!(step.output("image-id"), "ami-0000000000000000a");
    assert_eq!(step.output("image-name"), "web-ami-0000000000000000a");
    assert_eq!(
        stored_tags(&data, "ami-0000000000000000a")
            .get(STATUS_TAG)
            .map(String::as_str),
        Some("promoted")
    );
    assert_eq!(
        stored_tags(&data, "ami-0000000000000000b")
            .get(STATUS_TAG)
            .map(String::as_str),
        Some("rejected")
    );
    let pointers = Store::new(&data).pointer_table().unwrap();
    assert_eq!(
        pointers["/golden/web/latest"].last().unwrap().image_id,
        "ami-0000000000000000a"
    );
    assert!(
        step.summary.contains("release v1.2.0: image ami-0000000000000000a (web-ami-0000000000000000a) was verified for commit"),
        "{}",
        step.summary
    );
    assert!(
        step.summary
            .contains("| Promoted | yes: `/golden/web/latest` → version 1 |"),
        "{}",
        step.summary
    );
    assert!(step.commands("error").is_empty(), "{}", step.stdout);
}

/// A release whose commit has no image that passed every gate is refused: exit 1, nothing
/// promoted, the error names what was found.
pub fn release_refuses_an_image_that_did_not_pass(place: &Where) {
    let mut job = Job::new();
    let data = job.data_dir();
    write_pipeline(&job.workspace(), "ami-00000000000000001");
    store_image(
        &data,
        "ami-0000000000000000b",
        "web-b",
        "2026-11-21T10:00:00Z",
        &[(COMMIT_TAG, SHA), (STATUS_TAG, "rejected"), ("app", "web")],
    );
    store_image(
        &data,
        "ami-0000000000000000d",
        "web-d",
        "2026-11-22T10:00:00Z",
        &[(COMMIT_TAG, SHA), (STATUS_TAG, "baked"), ("app", "web")],
    );
    store_image(
        &data,
        "ami-0000000000000000c",
        "web-c",
        "2026-11-22T10:00:00Z",
        &[
            (COMMIT_TAG, "ffff"),
            (STATUS_TAG, "verified"),
            ("app", "web"),
        ],
    );
    job.set("GITHUB_REF", "refs/tags/v1.2.1")
        .input("mode", "promote");
    let step = job.run(place);
    assert_eq!(step.code, 1, "{step:#?}");
    assert_eq!(step.output("result"), "failed");
    assert_eq!(step.output("promoted"), "false");
    let errors = step.commands("error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("title=Bakery%3A the image failed::refusing to promote"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("ami-0000000000000000b (web-b, bakery:status=rejected"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("ami-0000000000000000d (web-d, bakery:status=baked"),
        "{}",
        errors[0]
    );
    assert!(
        !errors[0].contains("ami-0000000000000000c"),
        "{}",
        errors[0]
    );
    assert!(
        Store::new(&data).pointer_table().unwrap().is_empty(),
        "no pointer was set"
    );
    for id in ["ami-0000000000000000b", "ami-0000000000000000d"] {
        assert_ne!(
            stored_tags(&data, id).get(STATUS_TAG).map(String::as_str),
            Some("promoted")
        );
    }
    assert!(
        step.summary
            .contains("## ❌ Bakery `promote`: failed: refusing to promote"),
        "{}",
        step.summary
    );
}

/// `outdated` compares the newest source with the `bakery:source` tag of the image the
/// pointer names.
pub fn outdated(place: &Where) {
    let mut job = Job::new();
    let data = job.data_dir();
    write_pipeline(&job.workspace(), "ami-000000000000000f2");
    store_image(
        &data,
        "ami-000000000000000f1",
        "base-1",
        "2026-11-01T00:00:00Z",
        &[],
    );
    store_image(
        &data,
        "ami-000000000000000f2",
        "base-2",
        "2026-11-02T00:00:00Z",
        &[],
    );
    store_image(
        &data,
        "ami-000000000000000e1",
        "web-1",
        "2026-11-03T00:00:00Z",
        &[
            (STATUS_TAG, "promoted"),
            ("bakery:source", "ami-000000000000000f1"),
        ],
    );
    Store::new(&data)
        .set_pointer(
            "/golden/web/latest",
            "ami-000000000000000e1",
            "2026-11-03T00:00:00Z",
        )
        .unwrap();
    job.input("mode", "outdated");
    let step = job.run(place);
    assert_eq!(step.code, 0, "{step:#?}");
    assert_eq!(step.output("outdated"), "true");
    assert_eq!(step.output("result"), "passed");
    assert!(
        step.summary.contains("| Outdated | yes |"),
        "{}",
        step.summary
    );
    assert!(
        step.summary.contains(
            "was baked from ami-000000000000000f1; the newest source is now ami-000000000000000f2"
        ),
        "{}",
        step.summary
    );

    store_image(
        &data,
        "ami-000000000000000e2",
        "web-2",
        "2026-11-04T00:00:00Z",
        &[
            (STATUS_TAG, "promoted"),
            ("bakery:source", "ami-000000000000000f2"),
        ],
    );
    Store::new(&data)
        .set_pointer(
            "/golden/web/latest",
            "ami-000000000000000e2",
            "2026-11-04T00:00:00Z",
        )
        .unwrap();
    let step = job.run(place);
    assert_eq!(step.code, 0, "{step:#?}");
    assert_eq!(step.output("outdated"), "false");
    assert!(
        step.summary.contains("| Outdated | no |"),
        "{}",
        step.summary
    );
}

/// The post step (state `bakery_post=cleanup`) releases what a killed main step left on its
/// ledger and writes no outputs.
pub fn post_step_releases_leftovers(place: &Where) {
    let job = Job::new();
    let data = job.data_dir();
    let leftover = job.root.path().join("home/leftover-overlay");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("disk.qcow2"), "x").unwrap();
    // The path as the entrypoint sees it.
    let seen: PathBuf = match place {
        Where::Host => leftover.clone(),
        Where::Container(_) => PathBuf::from("/github/home/leftover-overlay"),
    };
    let ledger = LedgerFile {
        run_id: "run-killed".into(),
        pid: 4_000_000_000, // no such process: its owner is gone
        started: "2026-11-22T03:00:00Z".into(),
        entries: vec![Entry {
            seq: 1,
            resource: Resource::Path { path: seen },
            purpose: "probe overlay".into(),
            created: "2026-11-22T03:00:01Z".into(),
            released: false,
        }],
    };
    std::fs::create_dir_all(data.join("runs")).unwrap();
    std::fs::write(
        data.join("runs/run-killed.json"),
        serde_json::to_string(&ledger).unwrap(),
    )
    .unwrap();
    let mut job = job;
    job.set("STATE_bakery_post", "cleanup").input("mode", "run");
    let step = job.run(place);
    assert_eq!(step.code, 0, "{step:#?}");
    assert!(
        !leftover.exists(),
        "the leftover was released:\n{}",
        step.stderr
    );
    assert!(
        !data.join("runs/run-killed.json").exists(),
        "the ledger is gone once released"
    );
    assert!(
        step.outputs.is_empty(),
        "the post step sets no outputs: {:?}",
        step.outputs
    );
    assert!(
        step.stderr.contains("run-killed: 1 resource(s) to release"),
        "{}",
        step.stderr
    );
}

/// `mode: validate`: every problem of the pipeline and the files it names is an annotation on
/// its line, then the summary; fixed, the step passes. Nothing boots.
pub fn validate(place: &Where) {
    let mut job = Job::new();
    let ws = job.workspace();
    std::fs::write(ws.join("web.yml"), "- id: a\n  servise: {name: ssh}\n").unwrap();
    std::fs::write(
        ws.join("bakery.yml"),
        "source:\n  local: debian-12\nimage:\n  name: web-{{git.branch}}\nverify:\n  concurrency: 0\n  suites:\n    - web.yml\n",
    )
    .unwrap();
    job.input("pipeline", "bakery.yml")
        .input("mode", "validate")
        .input("github-token", TOKEN);
    let step = job.run(place);
    assert_eq!(step.code, 2, "{step:#?}");
    assert_no_secret(&step);
    assert_eq!(step.output("result"), "error");
    let errors = step.commands("error");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let at = [
        "::error file=bakery.yml,line=4,col=3,title=Bakery%3A invalid::bakery.yml:4:3: image.name: unknown template variable `git.branch`",
        "::error file=bakery.yml,line=6,col=3,title=Bakery%3A invalid::bakery.yml:6:3: verify.concurrency: must be at least 1",
        "::error file=web.yml,line=2,col=3,title=Bakery%3A invalid::",
    ];
    for (e, start) in errors.iter().zip(at) {
        assert!(e.starts_with(start), "{e}\ndoes not start with\n{start}");
    }
    assert!(
        errors[2].contains("unknown field `servise`"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].ends_with("::bakery.yml: 3 problems in the pipeline and the files it names"),
        "{}",
        errors[3]
    );

    std::fs::write(ws.join("web.yml"), "- id: a\n  service: {name: ssh}\n").unwrap();
    std::fs::write(
        ws.join("bakery.yml"),
        "source:\n  local: debian-12\nimage:\n  name: web-{{timestamp}}\nverify:\n  suites:\n    - web.yml\n",
    )
    .unwrap();
    let step = job.run(place);
    assert_eq!(step.code, 0, "{step:#?}");
    assert!(step.commands("error").is_empty(), "{}", step.stdout);
    assert_eq!(step.output("result"), "passed");
    assert!(
        !job.data_dir().join("runs").exists(),
        "validation creates nothing in the data directory"
    );
}
