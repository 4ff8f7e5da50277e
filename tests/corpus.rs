//! The bad-input corpus (tests/corpus/README.md): every file there is a mistake a user, a
//! third party's file or a damaged store can bring, with the exact message Bakery must give.
//! Each case runs `bakery` for real and must end with exit 2 (3 for a damaged store), that
//! message, no panic, no backtrace, and nothing created in the data directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The corpus' root.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// One case: its file, the format (the folder) and the lines the error must read.
struct Case {
    file: PathBuf,
    format: String,
    expected: Vec<String>,
}

impl Case {
    fn name(&self) -> String {
        format!("{}/{}", self.format, self.file_name())
    }

    /// The name of the case's file, without its folder.
    fn file_name(&self) -> String {
        self.file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(corpus()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let format = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                !name.starts_with('_') && !name.ends_with(".expected")
            })
            .collect();
        files.sort();
        for file in files {
            let sidecar = file.with_extension("expected");
            let text = if sidecar.exists() {
                std::fs::read_to_string(&sidecar).unwrap()
            } else {
                String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned()
            };
            let expected: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# expect: "))
                .map(str::to_string)
                .collect();
            assert!(
                !expected.is_empty(),
                "{}: no `# expect: ` line (in the file or in {})",
                file.display(),
                sidecar.display()
            );
            out.push(Case {
                file,
                format: format.clone(),
                expected,
            });
        }
    }
    out.sort_by_key(|c| c.name());
    out
}

/// The pipeline a case of `format` is run with, naming the case's file `name`.
fn pipeline_for(format: &str, name: &str) -> Option<String> {
    let head = "source:\n  local: debian-12\nimage:\n  name: corpus\nverify:\n  suites:\n";
    let entry = match format {
        "suite" | "experiment" => format!("    - {name}\n"),
        "goss" => format!("    - goss: {name}\n"),
        "goss-vars" => format!("    - goss: _template.yaml\n      vars: {name}\n"),
        "waivers" => format!("    - cis: {{benchmark: debian-12, waivers: {name}}}\n"),
        "attestations" => format!("    - cis: {{benchmark: debian-12, attestations: {name}}}\n"),
        _ => return None,
    };
    Some(format!("{head}{entry}"))
}

/// What a run printed and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn bakery(args: &[&str], cwd: &Path, data: &Path, env: &[(String, String)]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_bakery"))
        .args(args)
        .current_dir(cwd)
        .env_remove("GITHUB_WORKSPACE")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_STATE")
        .env("BAKERY_DATA_DIR", data)
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The error's lines: `error: X` and its `    | Y` continuation lines.
fn error_lines(stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in stderr.lines() {
        if let Some(first) = l.strip_prefix("error: ") {
            out.push(first.to_string());
            inside = true;
        } else if let (true, Some(more)) = (inside, l.strip_prefix("    | ")) {
            out.push(more.to_string());
        } else {
            inside = false;
        }
    }
    out
}

/// Every file under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

const IMAGE_ID: &str = "ami-0123456789abcdef0";

/// Sets up a store holding the case's damaged file; returns the command that reads it.
fn damaged_store(case: &Case, data: &Path) -> Vec<String> {
    let name = case.file_name();
    let image_dir = data.join("images").join(IMAGE_ID);
    std::fs::create_dir_all(&image_dir).unwrap();
    std::fs::write(image_dir.join("disk.qcow2"), b"").unwrap();
    let record = serde_json::json!({
        "id": IMAGE_ID, "name": "web", "parent": null, "tags": {}, "state": "available",
        "created": "2026-11-22T00:00:00Z", "size_bytes": 0, "boot": null
    });
    std::fs::write(image_dir.join("image.json"), record.to_string()).unwrap();
    let target = if name.starts_with("image-") {
        image_dir.join("image.json")
    } else if name.starts_with("pointers-") {
        data.join("pointers.json")
    } else if name.starts_with("ledger-") {
        std::fs::create_dir_all(data.join("runs")).unwrap();
        data.join("runs/run-20261201T000000-abcdef.json")
    } else {
        panic!(
            "{}: a store case is named image-*, pointers-* or ledger-*",
            case.name()
        );
    };
    std::fs::copy(&case.file, target).unwrap();
    let args: &[&str] = if name.starts_with("image-") {
        &["images"]
    } else if name.starts_with("pointers-") {
        &["image", "delete", IMAGE_ID]
    } else {
        &["cleanup"]
    };
    args.iter().map(|s| s.to_string()).collect()
}

/// `KEY=VALUE` lines of an action case (comments and blank lines aside).
fn action_env(case: &Case) -> Vec<(String, String)> {
    std::fs::read_to_string(&case.file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_string(), v.replace("\\n", "\n"))
        })
        .collect()
}

/// The messages of the `::error` annotations on stdout, unescaped.
fn annotations(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .filter_map(|l| l.splitn(3, "::").nth(2))
        .map(|m| {
            m.replace("%0A", "\n")
                .replace("%0D", "\r")
                .replace("%25", "%")
        })
        .collect()
}

/// Runs one case; returns what is wrong with the outcome, if anything.
fn check(case: &Case) -> Option<String> {
    let work = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(work.path()).unwrap();
    let data = cwd.join("data");
    let name = case.file_name();
    let mut before = Vec::new();
    let (ran, expected_code, got) = match case.format.as_str() {
        "store" => {
            let args = damaged_store(case, &data);
            before = tree(&data);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let ran = bakery(&args, &cwd, &data, &[]);
            let got = error_lines(&ran.stderr);
            (ran, 3, got)
        }
        "action" => {
            let ran = bakery(&["action"], &cwd, &data, &action_env(case));
            let got = annotations(&ran.stdout)
                .iter()
                .flat_map(|m| m.lines().map(str::to_string).collect::<Vec<_>>())
                .collect();
            (ran, 2, got)
        }
        format => {
            std::fs::copy(&case.file, cwd.join(&name)).unwrap();
            let pipeline = match pipeline_for(format, &name) {
                Some(p) => {
                    std::fs::write(cwd.join("bakery.yml"), p).unwrap();
                    "bakery.yml".to_string()
                }
                None => name.clone(),
            };
            if format == "goss-vars" {
                std::fs::copy(
                    corpus().join("goss-vars/_template.yaml"),
                    cwd.join("_template.yaml"),
                )
                .unwrap();
            }
            let ran = bakery(
                &["verify", "-f", &pipeline, "--image", IMAGE_ID],
                &cwd,
                &data,
                &[],
            );
            let mut got = error_lines(&ran.stderr);
            // `bakery validate` gives the same problems, one a line, and a summary.
            let checked = bakery(&["validate", "-f", &pipeline], &cwd, &data, &[]);
            let mut lines: Vec<String> = checked.stderr.lines().map(str::to_string).collect();
            let summary = lines.pop().unwrap_or_default();
            let expected_summary = format!(
                "error: {pipeline}: {} problem{} in the pipeline and the files it names",
                case.expected.len(),
                if case.expected.len() == 1 { "" } else { "s" }
            );
            if checked.code != 2 || summary != expected_summary || lines != got {
                got.push(format!(
                    "(bakery validate: exit {}, {})",
                    checked.code,
                    checked.stderr.trim_end().replace('\n', " / ")
                ));
            }
            (ran, 2, got)
        }
    };
    let prefix = format!("{}/", cwd.display());
    let got: Vec<String> = got.iter().map(|l| l.replace(&prefix, "")).collect();
    let mut wrong = Vec::new();
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        if ran.stderr.contains(bad) || ran.stdout.contains(bad) {
            wrong.push(format!("output mentions `{bad}`"));
        }
    }
    if ran.code != expected_code {
        wrong.push(format!("exit {} instead of {expected_code}", ran.code));
    }
    if got != case.expected {
        wrong.push(format!(
            "the message differs:\n  expected: {}\n  got:      {}",
            case.expected.join("\n            "),
            got.join("\n            ")
        ));
    }
    if tree(&data) != before {
        wrong.push(format!(
            "the data directory changed: {:?} -> {:?}",
            before,
            tree(&data)
        ));
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "{}: {}\n  stderr: {}",
            case.name(),
            wrong.join("; "),
            ran.stderr.trim_end().replace('\n', "\n          ")
        )
    })
}

#[test]
fn every_bad_input_gets_its_exact_message_and_leaves_nothing_behind() {
    let cases = cases();
    assert!(cases.len() >= 60, "the corpus holds {} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(check).collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_repositorys_examples_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for example in [
        "examples/local/bakery.yml",
        "examples/local/failing.yml",
        "examples/local/cis/bakery.yml",
        "examples/local/cis/stock.yml",
        "examples/aws/bakery.yml",
        "examples/aws/failing.yml",
    ] {
        let data = tempfile::tempdir().unwrap();
        let ran = bakery(&["validate", "-f", example], root, data.path(), &[]);
        assert_eq!(ran.code, 0, "{example}: {}", ran.stderr);
        assert_eq!(
            ran.stderr,
            format!("{example}: valid: the pipeline and every file it names\n")
        );
        assert!(
            tree(data.path()).is_empty(),
            "{example}: created {:?}",
            tree(data.path())
        );
    }
}

#[test]
fn the_corpus_covers_every_format() {
    let cases = cases();
    for format in [
        "pipeline",
        "suite",
        "experiment",
        "goss",
        "goss-vars",
        "waivers",
        "attestations",
        "action",
        "store",
    ] {
        let n = cases.iter().filter(|c| c.format == format).count();
        assert!(
            n >= 3,
            "{format}: {n} cases; the corpus needs at least 3 of each format"
        );
    }
}
