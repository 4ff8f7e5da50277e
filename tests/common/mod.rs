//! Shared pieces of the end-to-end tests: one data directory with the base image, the
//! `bakery` binary, and checks that a run left nothing behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bakery::cloud::local::bootstrap;

/// A place among the tests that boot VMs, held until dropped.
pub struct VmSlot(std::fs::File);

/// Waits for a VM place: one of `BAKERY_TEST_VM_PLACES` (a comma-separated list of place
/// numbers, default `0,1`), shared by every test binary through a lock file per place. Two
/// places by default, because a guest's boot keeps about one core busy while a chaos
/// experiment mostly waits out its fault, so two tests side by side finish sooner than one
/// after the other. `scripts/test.sh` gives each of its three guest lanes one place of its own
/// (three guests at once, measured in BENCHMARKS.md, "Test suite"), so no lane waits for
/// another's guests.
/// `BAKERY_TEST_VM_SLOTS` names the directory of the place files (default: the target's
/// temporary directory), so test runs from several checkouts can share the same places.
pub fn vm_lock() -> VmSlot {
    let places: Vec<String> = std::env::var("BAKERY_TEST_VM_PLACES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec!["0".into(), "1".into()]);
    let dir = std::env::var_os("BAKERY_TEST_VM_SLOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm-slots"));
    std::fs::create_dir_all(&dir).unwrap();
    // No guest test runs for an hour: waiting longer means a place's holder hangs.
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        for place in &places {
            let file = std::fs::File::create(dir.join(format!("place-{place}"))).unwrap();
            match file.try_lock() {
                Ok(()) => return VmSlot(file),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => panic!("locking a VM place: {e}"),
            }
        }
        assert!(
            Instant::now() < deadline,
            "no VM place came free within an hour in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the Debian 12 base image is bootstrapped once for every end-to-end test.
fn base_store() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bakery-base")
}

/// A fresh data directory for one test, holding the base image (hard links into the shared
/// base store, so each test starts clean without building or copying the image again).
pub fn data_dir(test: &str) -> PathBuf {
    let base = base_store();
    let base_id = {
        let _lock = FileLock::take(&base);
        find_base(&base).unwrap_or_else(|| {
            let out = run(bakery(&base).args(["image", "bootstrap", "debian-12"]));
            assert!(out.status.success(), "bootstrap failed");
            // Bases of older recipes are never used again: they go, with Bakery's own command.
            for (id, _) in bases(&base).iter().filter(|(_, r)| r != bootstrap::RECIPE) {
                let out = run(bakery(&base).args(["image", "delete", id]));
                assert!(out.status.success(), "deleting the old base {id}");
            }
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
    };
    let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{test}"));
    let _ = std::fs::remove_dir_all(&data);
    let from = base.join("images").join(&base_id);
    let to = data.join("images").join(&base_id);
    std::fs::create_dir_all(&to).unwrap();
    std::fs::hard_link(from.join("disk.qcow2"), to.join("disk.qcow2")).unwrap();
    // The disk boots by itself, so the record is all there is besides it.
    std::fs::copy(from.join("image.json"), to.join("image.json")).unwrap();
    data
}

fn find_base(store: &Path) -> Option<String> {
    bases(store)
        .into_iter()
        .find(|(_, recipe)| recipe == bootstrap::RECIPE)
        .map(|(id, _)| id)
}

/// The debian-12 base images in `store`, with the recipe version each was built by.
fn bases(store: &Path) -> Vec<(String, String)> {
    let listed = bakery(store).args(["images", "--json"]).output().unwrap();
    let images: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
    images
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["tags"][bootstrap::BASE_TAG] == "debian-12")
        .filter_map(|i| {
            let recipe = i["tags"][bootstrap::RECIPE_TAG].as_str().unwrap_or("");
            Some((i["id"].as_str()?.to_string(), recipe.to_string()))
        })
        .collect()
}

/// An exclusive lock on a directory, across processes (tests of several binaries share the
/// base store).
struct FileLock(std::fs::File);

impl FileLock {
    fn take(dir: &Path) -> FileLock {
        std::fs::create_dir_all(dir).unwrap();
        let file = std::fs::File::create(dir.join(".lock")).unwrap();
        file.lock().unwrap();
        FileLock(file)
    }
}

/// A `bakery` command with the shared data directory.
pub fn bakery(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bakery"));
    cmd.current_dir(repo())
        .env("BAKERY_DATA_DIR", data)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs a command and returns its output, printing it for the test log.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("bakery starts");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The lines of a run's stderr that tell why it failed (failed checks and experiments, errors),
/// without the consoles it quotes: for assertion messages, which CI shows when the whole
/// output is cut.
pub fn verdicts(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim_start().starts_with('|'))
        .filter(|l| {
            let lower = l.to_lowercase();
            lower.contains("fail") || lower.contains("error") || lower.contains("rejected")
        })
        .collect();
    let shown = &lines[..lines.len().min(40)];
    format!("{}\n({} such lines)", shown.join("\n"), lines.len())
}

/// The id of the base image in a test's data directory.
pub fn base_image(data: &Path) -> String {
    find_base(data).expect("data_dir() put the base image there")
}

/// Processes whose command line mentions `dir` (QEMU instances of that data directory).
pub fn processes_under(dir: &Path) -> Vec<String> {
    // With the separator, so that `e2e-action-verify` does not match a test running beside it
    // in `e2e-action-verify-sigint`.
    let needle = format!("{}/", dir.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && cmdline.contains("qemu") {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Asserts that no run left a VM, an instance directory, scratch files or a ledger.
pub fn assert_nothing_left(data: &Path) {
    assert_eq!(
        processes_under(data),
        Vec::<String>::new(),
        "QEMU processes left running"
    );
    for sub in ["instances", "runs", "work"] {
        let dir = data.join(sub);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
}

/// The image a pointer names now.
pub fn pointer(data: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(data.join("pointers.json")).ok()?;
    let table: serde_json::Value = serde_json::from_str(&text).unwrap();
    table[name].as_array()?.last()?["image_id"]
        .as_str()
        .map(str::to_string)
}

/// One image's metadata as `bakery images --json` shows it.
pub fn image(data: &Path, id: &str) -> serde_json::Value {
    let listed = bakery(data).args(["images", "--json"]).output().unwrap();
    let images: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no image {id}"))
}

/// Validates a CycloneDX JSON file against the published CycloneDX 1.5 schema (vendored in
/// tests/schemas/cyclonedx, its references resolved there, offline) with check-jsonschema from
/// .cache/lint-venv (scripts/lint-workflows.sh install); the error names what does not conform.
pub fn validate_cyclonedx(file: &Path) -> Result<(), String> {
    let tool = repo().join(".cache/lint-venv/bin/check-jsonschema");
    assert!(
        tool.exists(),
        "{}: missing; scripts/lint-workflows.sh install (run by scripts/test.sh) installs it",
        tool.display()
    );
    let schemas = repo().join("tests/schemas/cyclonedx");
    let out = Command::new(tool)
        .arg("--base-uri")
        .arg(format!("file://{}/", schemas.display()))
        .arg("--schemafile")
        .arg(schemas.join("bom-1.5.schema.json"))
        .arg(file)
        .output()
        .unwrap();
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Err(text.chars().take(4_000).collect())
}

/// The first line command check `id` of suite `suite` printed on its standard output, from a
/// run's JSON results (`None` if the run has no such check or it printed nothing). The
/// result's `output` shows the command, its exit status, then `--- stdout ---` and the text.
pub fn check_output(results: &serde_json::Value, suite: &str, id: &str) -> Option<String> {
    let output = results["suites"]
        .as_array()?
        .iter()
        .filter(|s| s["suite"] == suite)
        .flat_map(|s| s["results"].as_array().into_iter().flatten())
        .find(|r| r["id"] == id)?["output"]
        .as_str()?;
    let (_, stdout) = output.split_once("--- stdout ---\n")?;
    stdout.lines().next().map(|l| l.trim().to_string())
}

/// PATH with the pinned ansible-playbook first (installed once by scripts/ansible.sh).
pub fn ansible_path() -> String {
    let out = Command::new(repo().join("scripts/ansible.sh"))
        .arg("install")
        .output()
        .expect("scripts/ansible.sh runs");
    assert!(
        out.status.success(),
        "scripts/ansible.sh install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

/// A variant of an example's pipeline, written beside the examples (so that their relative
/// paths resolve) under a name starting with `prefix`; removed when the path is dropped.
pub fn example_variant(prefix: &str, text: &str) -> tempfile::TempPath {
    let path = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".yml")
        .tempfile_in(repo().join("examples/local"))
        .unwrap()
        .into_temp_path();
    std::fs::write(&path, text).unwrap();
    path
}
