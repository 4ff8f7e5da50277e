//! action.yml and the workflows that use it: every workflow parses as YAML, every `uses:` of
//! this action passes only inputs action.yml declares (and reads only outputs it declares),
//! and action.yml declares exactly the inputs the entrypoint reads and the outputs it writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn action() -> Value {
    yaml(&repo().join("action.yml"))
}

/// Every workflow file of the repository: the examples and its own CI.
fn workflows() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples/workflows", ".github/workflows"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// `uses:` values that mean this action: `./` (the repository itself) or `<owner>/bakery@<ref>`.
fn is_this_action(uses: &str) -> bool {
    uses == "./"
        || uses
            .split('@')
            .next()
            .is_some_and(|r| r.ends_with("/bakery"))
}

#[test]
fn action_yml_is_a_docker_action_of_the_dockerfile() {
    let a = action();
    assert_eq!(a["runs"]["using"], "docker");
    assert_eq!(a["runs"]["image"], "Dockerfile");
    assert_eq!(
        a["runs"]["args"],
        serde_yaml::from_str::<Value>("[action]").unwrap()
    );
    assert_eq!(a["runs"]["post-entrypoint"], "/bakery");
    for (name, input) in a["inputs"].as_mapping().unwrap() {
        assert!(
            input["description"].is_string(),
            "input {name:?} has a description"
        );
    }
    for (name, output) in a["outputs"].as_mapping().unwrap() {
        assert!(
            output["description"].is_string(),
            "output {name:?} has a description"
        );
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("ENTRYPOINT [\"/bakery\"]"));
}

#[test]
fn action_yml_declares_what_the_entrypoint_reads_and_writes() {
    let a = action();
    let declared: BTreeSet<String> = bakery::action::inputs::DECLARED
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        keys(&a["inputs"]),
        declared,
        "action.yml's inputs vs the inputs the entrypoint reads"
    );
    // The outputs the entrypoint writes.
    let written: BTreeSet<String> = bakery::action::summary::Report::new("run")
        .step_outputs(String::new())
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert!(written.len() >= 6, "{written:?}");
    assert_eq!(
        keys(&a["outputs"]),
        written,
        "action.yml's outputs vs the outputs the entrypoint writes"
    );
    let modes: BTreeSet<String> = bakery::action::inputs::ActionMode::NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let description = a["inputs"]["mode"]["description"].as_str().unwrap();
    for m in &modes {
        assert!(
            description.contains(&format!("`{m}`")),
            "the mode input describes `{m}`"
        );
    }
}

#[test]
fn every_use_of_this_action_passes_only_declared_inputs() {
    let a = action();
    let inputs = keys(&a["inputs"]);
    let outputs = keys(&a["outputs"]);
    let modes: BTreeSet<&str> = bakery::action::inputs::ActionMode::NAMES
        .into_iter()
        .collect();
    let outputs_read =
        regex::Regex::new(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)").unwrap();
    let mut uses_seen = 0;
    let files = workflows();
    assert!(files.len() >= 5, "{files:?}");
    for file in &files {
        let w = yaml(file);
        let name = file.display();
        assert!(
            w["on"].is_mapping() || w["on"].is_string() || w["on"].is_sequence(),
            "{name}: `on` is set"
        );
        let jobs = w["jobs"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{name}: no jobs"));
        for (job_name, job) in jobs {
            assert!(
                job["runs-on"].is_string(),
                "{name}: job {job_name:?} has runs-on"
            );
            let steps = job["steps"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{name}: job {job_name:?} has no steps"));
            let mut ids_of_this_action = BTreeSet::new();
            for step in steps {
                assert!(
                    step["uses"].is_string() ^ step["run"].is_string(),
                    "{name}: a step has exactly one of uses/run: {step:?}"
                );
                let Some(uses) = step["uses"].as_str() else {
                    continue;
                };
                if !is_this_action(uses) {
                    continue;
                }
                uses_seen += 1;
                let with = keys(&step["with"]);
                let unknown: Vec<_> = with.difference(&inputs).collect();
                assert!(
                    unknown.is_empty(),
                    "{name}: `uses: {uses}` passes undeclared inputs {unknown:?}"
                );
                if let Some(mode) = step["with"]["mode"].as_str() {
                    assert!(modes.contains(mode), "{name}: mode `{mode}` is not a mode");
                }
                for (k, v) in step["with"].as_mapping().into_iter().flatten() {
                    assert!(
                        !v.is_mapping() && !v.is_sequence(),
                        "{name}: input {k:?} is a scalar"
                    );
                }
                if let Some(id) = step["id"].as_str() {
                    ids_of_this_action.insert(id.to_string());
                }
            }
            // `steps.<id>.outputs.<name>` of this action's steps name declared outputs.
            let text = serde_yaml::to_string(job).unwrap();

            for c in outputs_read.captures_iter(&text) {
                if ids_of_this_action.contains(&c[1]) {
                    assert!(
                        outputs.contains(&c[2]),
                        "{name}: reads undeclared output `{}` of step `{}`",
                        &c[2],
                        &c[1]
                    );
                }
            }
        }
    }
    assert!(
        uses_seen >= 6,
        "the workflows use the action {uses_seen} times"
    );
}

#[test]
fn the_examples_cover_push_pull_request_release_and_schedule() {
    let dir = repo().join("examples/workflows");
    let triggers: Vec<BTreeSet<String>> = workflows()
        .iter()
        .filter(|p| p.starts_with(&dir))
        .map(|p| keys(&yaml(p)["on"]))
        .collect();
    for t in ["push", "pull_request", "schedule"] {
        assert!(
            triggers.iter().any(|k| k.contains(t)),
            "an example runs on {t}"
        );
    }
    let release = yaml(&dir.join("release.yml"));
    assert!(
        release["on"]["push"]["tags"].is_sequence(),
        "release.yml runs on tag pushes"
    );
    let scheduled = std::fs::read_to_string(dir.join("scheduled-rebuild.yml")).unwrap();
    assert!(
        scheduled.contains("mode: outdated")
            && scheduled.contains("steps.outdated.outputs.outdated == 'true'")
    );
    let pr = yaml(&dir.join("pr-check.yml"));
    assert_eq!(
        pr["jobs"]["check"]["permissions"]["checks"], "write",
        "the PR check may write check runs"
    );
    // A fork's pull request has no cloud credentials: the job runs only for the repository's
    // own branches (README, "Pull requests from forks").
    assert_eq!(
        pr["jobs"]["check"]["if"],
        "github.event.pull_request.head.repo.full_name == github.repository"
    );
    assert!(
        keys(&pr["on"]) == BTreeSet::from(["pull_request".to_string()]),
        "no pull_request_target: it would hand a fork's scripts the credentials"
    );
}

/// What a security review asks of every workflow the project ships or shows (zizmor and
/// actionlint check more, in tests/action_lint.rs; this says it in the project's own terms):
/// actions pinned to a full commit with the version in a comment, checkout keeping no
/// credentials, no token permission granted to the whole workflow beyond `contents: read`,
/// every job that needs more saying so, and no `${{ … }}` pasted into a script.
#[test]
fn every_workflow_is_hardened() {
    let pinned = regex::Regex::new(
        r"^\s*(?:- )?uses: ([A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+\s*$",
    )
    .unwrap();
    for file in workflows() {
        let name = file.display();
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(uses) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")
            else {
                continue;
            };
            if uses.starts_with("./") {
                continue;
            }
            assert!(
                pinned.is_match(line),
                "{name}:{}: `{uses}` is not pinned to a commit with `# vX.Y.Z` after it",
                n + 1
            );
        }
        let w = yaml(&file);
        let top = &w["permissions"];
        assert!(
            top.as_mapping().is_some_and(|m| m.is_empty())
                || *top == serde_yaml::from_str::<Value>("{contents: read}").unwrap(),
            "{name}: workflow-level permissions are {{}} or contents: read, not {top:?}"
        );
        for (job_name, job) in w["jobs"].as_mapping().unwrap() {
            if top.as_mapping().is_some_and(|m| m.is_empty()) {
                assert!(
                    job["permissions"].is_mapping(),
                    "{name}: job {job_name:?} says which permissions it needs"
                );
            }
            for step in job["steps"].as_sequence().unwrap() {
                let uses = step["uses"].as_str().unwrap_or_default();
                if uses.starts_with("actions/checkout@") {
                    assert_eq!(
                        step["with"]["persist-credentials"], false,
                        "{name}: job {job_name:?}: checkout keeps no credentials"
                    );
                }
                if let Some(script) = step["run"].as_str() {
                    assert!(
                        !script.contains("${{"),
                        "{name}: job {job_name:?}: an expression inside a script: {script}"
                    );
                }
            }
        }
    }
}
