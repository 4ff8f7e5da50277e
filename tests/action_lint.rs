//! The GitHub Actions linters over every workflow the project ships or shows and over
//! action.yml, as a security-minded user would run them before copying one: zizmor (offline)
//! reports nothing above informational, actionlint (with ShellCheck over the `run:` scripts)
//! nothing at all, and the workflow and action schemas accept every file.
//!
//! The tools come from scripts/lint-workflows.sh (run by scripts/test.sh) in .cache/lint-venv.
//! Each linter is also shown a workflow with known faults, so that a linter or an invocation
//! that silently checks nothing fails here instead of passing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> PathBuf {
    let path = repo().join(".cache/lint-venv/bin").join(name);
    assert!(
        path.exists(),
        "{}: missing; scripts/lint-workflows.sh install (run by scripts/test.sh) installs it",
        path.display()
    );
    path
}

/// Every workflow file (relative to the repository) and action.yml.
fn shipped_workflows() -> Vec<String> {
    let mut files = Vec::new();
    for dir in [".github/workflows", "examples/workflows"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".yml") || name.ends_with(".yaml") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.sort();
    assert!(
        files.iter().any(|f| f == ".github/workflows/release.yml"),
        "{files:?}"
    );
    assert!(files.len() >= 6, "{files:?}");
    files
}

fn run(cmd: &mut Command, dir: &Path) -> Output {
    let out = cmd
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A workflow with the faults the issue found in the examples: an action by tag, checkout
/// keeping its credentials, an untrusted value pasted into a script, a bad input name.
const FAULTY: &str = r#"name: faulty
on: pull_request
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          aws-regoin: eu-west-1
      - run: echo "${{ github.event.pull_request.title }}"
"#;

fn faulty_workflow() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::write(dir.path().join(".github/workflows/faulty.yml"), FAULTY).unwrap();
    dir
}

/// zizmor's findings as (audit, severity, location), for a persona: `regular` (its default) or
/// `auditor` (every audit, false positives accepted).
fn zizmor(persona: &str, files: &[String], dir: &Path) -> Vec<(String, String, String)> {
    let out = run(
        Command::new(tool("zizmor"))
            .args(["--offline", "--format", "json", "--no-progress"])
            .args(["--persona", persona])
            .args(files),
        dir,
    );
    // Exit codes above 1 say which severity was found; 1 is zizmor's own failure.
    assert_ne!(out.status.code(), Some(1), "zizmor failed:\n{}", text(&out));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("zizmor's JSON: {e}\n{}", text(&out)));
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let loc = &f["locations"][0];
            (
                f["ident"].as_str().unwrap_or_default().to_string(),
                f["determinations"]["severity"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                format!(
                    "{}:{}",
                    loc["symbolic"]["key"]["Local"]["verbatim_path"]
                        .as_str()
                        .unwrap_or("?"),
                    loc["concrete"]["location"]["start_point"]["row"]
                        .as_u64()
                        .map(|r| (r + 1).to_string())
                        .unwrap_or_default()
                ),
            )
        })
        .collect()
}

/// Under the auditor persona, which also reports what zizmor's default leaves out (an
/// explicit `persist-credentials: true`, a step output pasted into a script, a permission
/// without a comment, a workflow without a concurrency limit).
#[test]
fn zizmor_finds_nothing_above_informational() {
    let mut files = shipped_workflows();
    files.push("action.yml".to_string());
    let findings = zizmor("auditor", &files, &repo());
    let serious: Vec<_> = findings
        .iter()
        .filter(|(_, severity, _)| severity != "Informational")
        .collect();
    assert!(serious.is_empty(), "zizmor --offline: {serious:#?}");
}

#[test]
fn zizmor_catches_the_faults_the_examples_had() {
    let dir = faulty_workflow();
    let findings = zizmor(
        "regular",
        &[".github/workflows/faulty.yml".to_string()],
        dir.path(),
    );
    for audit in ["unpinned-uses", "artipacked", "template-injection"] {
        assert!(
            findings
                .iter()
                .any(|(a, s, _)| a == audit && s != "Informational"),
            "zizmor did not report {audit}: {findings:#?}"
        );
    }
}

/// actionlint's findings as `file:line:col: message [kind]`.
fn actionlint(files: &[String], dir: &Path) -> Vec<String> {
    let out = run(
        Command::new(tool("actionlint"))
            .args(["-format", "{{json .}}"])
            .args(files),
        dir,
    );
    // 0: nothing found, 1: findings; anything else is a failure of the tool.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "actionlint failed:\n{}",
        text(&out)
    );
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("actionlint's JSON: {e}\n{}", text(&out)));
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}: {} [{}]",
                f["filepath"].as_str().unwrap_or("?"),
                f["line"],
                f["column"],
                f["message"].as_str().unwrap_or_default(),
                f["kind"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn actionlint_finds_nothing() {
    // Without ShellCheck on PATH actionlint skips the `run:` scripts without a word.
    let shellcheck = Command::new("shellcheck").arg("--version").output();
    assert!(
        shellcheck.is_ok_and(|o| o.status.success()),
        "shellcheck is missing; scripts/lint-workflows.sh install installs it"
    );
    let findings = actionlint(&shipped_workflows(), &repo());
    assert!(findings.is_empty(), "actionlint:\n{}", findings.join("\n"));
}

#[test]
fn actionlint_catches_a_faulty_workflow() {
    let dir = faulty_workflow();
    let findings = actionlint(&[".github/workflows/faulty.yml".to_string()], dir.path());
    let all = findings.join("\n");
    assert!(all.contains("potentially untrusted"), "{all}");
    assert!(all.contains("\"aws-regoin\" is not defined"), "{all}");
}

fn check_jsonschema(schema: &str, files: &[String], dir: &Path) -> Output {
    run(
        Command::new(tool("check-jsonschema"))
            .args(["--builtin-schema", schema])
            .args(files),
        dir,
    )
}

#[test]
fn the_schemas_accept_every_workflow_and_action_yml() {
    let out = check_jsonschema("vendor.github-workflows", &shipped_workflows(), &repo());
    assert!(out.status.success(), "{}", text(&out));
    let out = check_jsonschema(
        "vendor.github-actions",
        &["action.yml".to_string()],
        &repo(),
    );
    assert!(out.status.success(), "{}", text(&out));
    // And they refuse what GitHub would refuse: a misspelt key.
    let dir = faulty_workflow();
    std::fs::write(
        dir.path().join(".github/workflows/faulty.yml"),
        FAULTY.replace("runs-on:", "runs_on:"),
    )
    .unwrap();
    let out = check_jsonschema(
        "vendor.github-workflows",
        &[".github/workflows/faulty.yml".to_string()],
        dir.path(),
    );
    assert!(!out.status.success(), "{}", text(&out));
}

/// The README's GitHub Action section leads with the six lines a job needs and the job's
/// permissions. Users copy them as they are, so they are linted like the shipped workflows:
/// put into a job of a workflow (the README names the commit to pin as `<commit of tag …>`,
/// which stands for the 40 hex digits it says how to find), nothing above informational from
/// zizmor, nothing from actionlint, and the action's inputs are ones action.yml declares.
#[test]
fn the_readme_s_six_lines_pass_the_linters() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## GitHub Action\n")
        .nth(1)
        .expect("README has a section `## GitHub Action`");
    let section = section.split("\n## ").next().unwrap();
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(
        blocks.len() >= 2,
        "the steps and the permissions: {blocks:?}"
    );
    let (steps, permissions) = (blocks[0], blocks[1]);
    assert_eq!(steps.lines().count(), 6, "six lines:\n{steps}");
    assert!(
        permissions.trim_start().starts_with("permissions:"),
        "{permissions}"
    );
    let placeholder = regex::Regex::new(r"@<commit of tag v[0-9.]+>").unwrap();
    assert!(placeholder.is_match(steps), "{steps}");
    let steps = placeholder.replace(steps, "@0123456789abcdef0123456789abcdef01234567");
    let workflow = format!(
        "name: readme\non: push\npermissions: {{}}\nconcurrency:\n  group: readme-${{{{ github.ref }}}}\n\
         jobs:\n  bake:\n    runs-on: ubuntu-latest\n    timeout-minutes: 90\n{permissions}    steps:\n{steps}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::write(dir.path().join(".github/workflows/readme.yml"), &workflow).unwrap();
    let files = [".github/workflows/readme.yml".to_string()];

    // The README's YAML as a workflow: this action's step passes only declared inputs.
    let parsed: serde_yaml::Value = serde_yaml::from_str(&workflow)
        .unwrap_or_else(|e| panic!("the README's lines as a workflow: {e}\n{workflow}"));
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("action.yml")).unwrap()).unwrap();
    let ours = parsed["jobs"]["bake"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("your-org/bakery@"))
        })
        .unwrap_or_else(|| panic!("no step uses your-org/bakery:\n{workflow}"));
    for input in ours["with"].as_mapping().unwrap().keys() {
        let input = input.as_str().unwrap();
        assert!(
            !action["inputs"][input].is_null(),
            "the README passes {input:?}, which action.yml does not declare"
        );
    }

    let findings = zizmor("auditor", &files, dir.path());
    let serious: Vec<_> = findings
        .iter()
        .filter(|(_, severity, _)| severity != "Informational")
        .collect();
    assert!(serious.is_empty(), "zizmor:\n{workflow}\n{serious:#?}");
    let findings = actionlint(&files, dir.path());
    assert!(
        findings.is_empty(),
        "actionlint:\n{workflow}\n{}",
        findings.join("\n")
    );
}
