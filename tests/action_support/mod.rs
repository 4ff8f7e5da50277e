//! Test support for the GitHub Action: GitHub's REST description and a stand-in API server
//! that validates requests against it, and a runner-like harness for the entrypoint.

#![allow(dead_code)]

pub mod github_server;
pub mod openapi;
pub mod runner;
pub mod scenarios;

use std::path::Path;

use bakery::cloud::local::store::{ImageRecord, Store};
use bakery::cloud::{Image, Tags};

/// Puts an image record in the local store under `data_dir` (no disk: enough for promotion,
/// lookups and tags, which never touch it).
pub fn store_image(
    data_dir: &Path,
    id: &str,
    name: &str,
    created: &str,
    tags: &[(&str, &str)],
) -> Image {
    let image = Image {
        id: id.to_string(),
        name: name.to_string(),
        parent: None,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Tags>(),
        state: "available".to_string(),
        created: created.to_string(),
        size_bytes: 0,
    };
    Store::new(data_dir)
        .save(&ImageRecord {
            image: image.clone(),
            boot: None,
        })
        .unwrap();
    image
}

/// An image's tags as the store has them now.
pub fn stored_tags(data_dir: &Path, id: &str) -> Tags {
    Store::new(data_dir).record(id).unwrap().image.tags
}

/// The venv scripts/test.sh creates with junitparser (PyPI) in it.
pub fn junitparser_python() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/junit-venv/bin/python")
}

/// Reads a JUnit file with junitparser, the parser the most used JUnit publishing action is
/// built on, and returns what it saw: per suite its counts and per case its result.
pub fn junitparser_read(path: &Path) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
from junitparser import JUnitXml, TestSuite, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, TestSuite) else list(xml)
out = []
for s in suites:
    cases = []
    for c in s:
        results = [{"kind": type(r).__name__, "message": r.message, "text": r.text} for r in c.result]
        cases.append({"name": c.name, "classname": c.classname, "time": c.time, "results": results})
    out.append({"name": s.name, "tests": s.tests, "failures": s.failures, "errors": s.errors,
                "skipped": s.skipped, "cases": cases})
print(json.dumps(out))
"#;
    let python = junitparser_python();
    let out = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/test.sh, which installs junitparser into .cache/junit-venv",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "junitparser could not read {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
