//! Shared pieces of the end-to-end tests: one data directory with the base image, the
//! `bakery` binary, and checks that a run left nothing behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

static VM_LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests that boot VMs: on two cores, one VM at a time is fastest.
pub fn vm_lock() -> MutexGuard<'static, ()> {
    VM_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The data directory the end-to-end tests share, so the base image is built once.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bakery-e2e")
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

/// The id of the base image, bootstrapping it the first time.
pub fn base_image(data: &Path) -> String {
    let listed = run(bakery(data).args(["images", "--json"]));
    assert!(listed.status.success());
    let images: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    if let Some(id) = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tags"]["bakery:base"] == "debian-12")
        .and_then(|i| i["id"].as_str())
    {
        return id.to_string();
    }
    let out = run(bakery(data).args(["image", "bootstrap", "debian-12"]));
    assert!(out.status.success(), "bootstrap failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Processes whose command line mentions `dir` (QEMU instances of that data directory).
pub fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')) {
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
    assert_eq!(processes_under(data), Vec::<String>::new(), "QEMU processes left running");
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
    table[name].as_array()?.last()?["image_id"].as_str().map(str::to_string)
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
