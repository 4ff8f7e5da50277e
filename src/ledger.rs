//! The run ledger: every resource a run creates, written to disk before the run uses it, and
//! released in reverse order when the run ends — by success, error, panic or signal — or later by
//! `bakery cleanup` when the process that owned it was killed outright.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Something a run created and must remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    /// A process on this machine; released by SIGTERM, then SIGKILL. `marker` is a string its
    /// command line contains, so that a recycled pid is never killed.
    Process { pid: u32, marker: String },
    /// A file or directory on this machine; released by removing it.
    Path { path: PathBuf },
    /// A fault injected into an instance by a failure-mode experiment. The experiment removes
    /// it (on success, error and signals alike); should Bakery die first, the dead-man's switch
    /// placed on the instance before the fault removes it by `until` (RFC 3339), and a local
    /// instance dies with Bakery. Releasing the entry has nothing left to do.
    Fault {
        instance: String,
        fault: String,
        until: String,
    },
    /// A provider's resource (an instance, a key pair, ...); released by that provider.
    Cloud {
        provider: String,
        kind: String,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Process { pid, .. } => write!(f, "process {pid}"),
            Resource::Path { path } => write!(f, "{}", path.display()),
            Resource::Fault {
                instance, fault, ..
            } => write!(f, "fault {fault} on {instance}"),
            Resource::Cloud {
                provider, kind, id, ..
            } => write!(f, "{provider} {kind} {id}"),
        }
    }
}

/// Releases the [`Resource::Cloud`] entries of one provider.
pub trait Release {
    /// The provider name used in [`Resource::Cloud::provider`].
    fn provider_name(&self) -> &str;
    /// Deletes the resource; a resource that is already gone is not an error.
    fn release(&self, resource: &Resource) -> Result<()>;
}

/// One line of the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub resource: Resource,
    /// What the resource is for ("builder instance", "probe overlay").
    pub purpose: String,
    pub created: String,
    pub released: bool,
}

/// The on-disk form of a ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerFile {
    pub run_id: String,
    /// The process that owns the run; `bakery cleanup` leaves a live owner's run alone.
    pub pid: u32,
    pub started: String,
    pub entries: Vec<Entry>,
}

/// A handle on one entry, returned by [`Ledger::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(u64);

/// The ledger of one run, shared between the pipeline and the signal handler.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    state: Mutex<LedgerFile>,
}

impl Ledger {
    /// Starts the ledger of run `run_id` in `dir` (created if missing).
    pub fn create(dir: &Path, run_id: &str) -> Result<Arc<Ledger>> {
        std::fs::create_dir_all(dir).at("creating", dir)?;
        let ledger = Ledger {
            path: dir.join(format!("{run_id}.json")),
            state: Mutex::new(LedgerFile {
                run_id: run_id.to_string(),
                pid: std::process::id(),
                started: crate::clock::now_rfc3339(),
                entries: Vec::new(),
            }),
        };
        ledger.save(&ledger.lock())?;
        Ok(Arc::new(ledger))
    }

    /// Opens a ledger left on disk by another run.
    pub fn open(path: &Path) -> Result<Ledger> {
        let text = std::fs::read_to_string(path).at("reading", path)?;
        let file: LedgerFile = serde_json::from_str(&text).map_err(|e| {
            Error::Infra(format!(
                "{}; this run ledger is damaged, so what its run created cannot be released \
                 from it. Release that by hand (a `qemu-system` process or a disk under the \
                 data directory's `instances/`; with AWS, resources tagged bakery:run-id \
                 with this file's name: `bakery cleanup --provider aws` finds them), then \
                 delete the file",
                crate::cloud::local::store::json_error(path, &e)
            ))
        })?;
        Ok(Ledger {
            path: path.to_path_buf(),
            state: Mutex::new(file),
        })
    }

    /// The ledgers in `dir`, oldest first.
    pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                for e in rd {
                    let p = e.at("listing", dir)?.path();
                    if p.extension().is_some_and(|x| x == "json") {
                        found.push(p);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("listing", dir, e)),
        }
        found.sort();
        Ok(found)
    }

    /// The run this ledger belongs to.
    pub fn run_id(&self) -> String {
        self.lock().run_id.clone()
    }

    /// A copy of the ledger's contents.
    pub fn snapshot(&self) -> LedgerFile {
        self.lock().clone()
    }

    /// Records `resource` and writes the ledger to disk before returning, so a resource is never
    /// in use without being on record. Call it *before* creating the resource where possible.
    pub fn record(&self, resource: Resource, purpose: &str) -> Result<Token> {
        // Once a signal has asked the run to stop, nothing new is created.
        crate::signals::check()?;
        let mut state = self.lock();
        let seq = state.entries.last().map_or(1, |e| e.seq + 1);
        tracing::debug!(%resource, purpose, "ledger: record");
        state.entries.push(Entry {
            seq,
            resource,
            purpose: purpose.to_string(),
            created: crate::clock::now_rfc3339(),
            released: false,
        });
        self.save(&state)?;
        Ok(Token(seq))
    }

    /// Changes what an entry points at (a process id learned after spawning, say).
    pub fn update(&self, token: Token, resource: Resource) -> Result<()> {
        let mut state = self.lock();
        if let Some(e) = state.entries.iter_mut().find(|e| e.seq == token.0) {
            e.resource = resource;
        }
        self.save(&state)
    }

    /// Marks an entry released without touching the resource: it has been handed over to
    /// something that outlives the run (an overlay that became an image, say).
    pub fn forget(&self, token: Token) -> Result<()> {
        let mut state = self.lock();
        if let Some(e) = state.entries.iter_mut().find(|e| e.seq == token.0) {
            e.released = true;
        }
        self.save(&state)
    }

    /// Releases one entry now.
    pub fn release(&self, token: Token, cloud: Option<&dyn Release>) -> Result<()> {
        crate::signals::releasing();
        let entry = {
            let state = self.lock();
            state
                .entries
                .iter()
                .find(|e| e.seq == token.0 && !e.released)
                .cloned()
        };
        let Some(entry) = entry else { return Ok(()) };
        release_resource(&entry.resource, cloud)?;
        self.forget(token)
    }

    /// Releases every entry still active, newest first. Keeps going past failures and returns
    /// them; removes the ledger file once everything is released.
    pub fn unwind(&self, cloud: Option<&dyn Release>) -> Vec<Error> {
        crate::signals::releasing();
        let pending: Vec<Entry> = {
            let state = self.lock();
            state
                .entries
                .iter()
                .rev()
                .filter(|e| !e.released)
                .cloned()
                .collect()
        };
        let mut errors = Vec::new();
        for entry in pending {
            tracing::debug!(resource = %entry.resource, "ledger: release");
            match release_resource(&entry.resource, cloud) {
                Ok(()) => {
                    if let Err(e) = self.forget(Token(entry.seq)) {
                        errors.push(e);
                    }
                }
                Err(e) => errors.push(Error::Infra(format!(
                    "could not release {} ({}): {e}",
                    entry.resource, entry.purpose
                ))),
            }
        }
        if errors.is_empty() {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(Error::io("removing", &self.path, e));
                }
            }
        }
        errors
    }

    fn lock(&self) -> MutexGuard<'_, LedgerFile> {
        // A panic while holding the lock leaves consistent data (each change is one push or
        // one flag), so a poisoned lock is still usable for cleanup.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, state: &LedgerFile) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(state).expect("a ledger serializes");
        if let Err(e) = std::fs::write(&tmp, text) {
            // A full disk leaves the ledger as last written; no half-written copy beside it.
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io("writing", &tmp, e));
        }
        std::fs::rename(&tmp, &self.path).at("writing", &self.path)
    }
}

/// Releases one resource; a resource that is already gone counts as released.
fn release_resource(resource: &Resource, cloud: Option<&dyn Release>) -> Result<()> {
    match resource {
        Resource::Process { pid, marker } => stop_process(*pid, marker),
        Resource::Path { path } => remove_path(path),
        Resource::Fault {
            instance,
            fault,
            until,
        } => {
            tracing::debug!(%instance, %fault, %until, "fault left to its dead-man's switch");
            Ok(())
        }
        Resource::Cloud { provider, .. } => match cloud {
            Some(c) if c.provider_name() == provider => c.release(resource),
            _ => Err(Error::Infra(format!(
                "{resource} belongs to provider `{provider}`; run `bakery cleanup` with a pipeline file for that provider"
            ))),
        },
    }
}

fn remove_path(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", path, e)),
        _ => Ok(()),
    }
}

/// True when `pid` is a live (not zombie) process whose command line contains `marker`.
pub fn process_matches(pid: u32, marker: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline)
        .replace('\0', " ")
        .contains(marker)
}

/// Every live process whose command line contains `marker`, besides `pid` if it matches. A
/// pid of 0 (the process was being started when the run stopped) relies on the marker alone.
fn processes_matching(pid: u32, marker: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&p: &u32| p != std::process::id() && process_matches(p, marker))
                .collect()
        })
        .unwrap_or_default();
    if pid != 0 && !pids.contains(&pid) && process_matches(pid, marker) {
        pids.push(pid);
    }
    pids
}

/// Sends SIGTERM, waits up to 3 s, then SIGKILL, to every process the entry covers.
fn stop_process(pid: u32, marker: &str) -> Result<()> {
    for (sig, wait) in [(libc::SIGTERM, 3), (libc::SIGKILL, 5)] {
        let pids = processes_matching(pid, marker);
        if pids.is_empty() {
            return Ok(());
        }
        for p in &pids {
            // SAFETY: kill has no memory effects; the pids were just matched by marker.
            unsafe { libc::kill(*p as libc::pid_t, sig) };
        }
        let deadline = Instant::now() + Duration::from_secs(wait);
        while Instant::now() < deadline {
            if pids.iter().all(|p| !process_matches(*p, marker)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(Error::Infra(format!(
        "process {pid} ({marker}) did not exit after SIGKILL"
    )))
}

/// True when the process that owns a ledger is still running.
pub fn owner_alive(pid: u32) -> bool {
    pid != std::process::id() && process_matches(pid, "bakery")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwind_removes_paths_newest_first_and_the_ledger_itself() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().join("outer");
        let inner = outer.join("inner.txt");
        let ledger = Ledger::create(&dir.path().join("runs"), "r-test").unwrap();
        std::fs::create_dir(&outer).unwrap();
        ledger
            .record(
                Resource::Path {
                    path: outer.clone(),
                },
                "outer",
            )
            .unwrap();
        std::fs::write(&inner, "x").unwrap();
        ledger
            .record(
                Resource::Path {
                    path: inner.clone(),
                },
                "inner",
            )
            .unwrap();

        let reopened = Ledger::open(&dir.path().join("runs/r-test.json")).unwrap();
        assert_eq!(reopened.snapshot().entries.len(), 2);

        assert!(reopened.unwind(None).is_empty());
        assert!(!outer.exists());
        assert!(!dir.path().join("runs/r-test.json").exists());
    }

    #[test]
    fn kills_a_process_only_when_its_marker_matches() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let pid = child.id();
        stop_process(pid, "not-this-one").unwrap();
        assert!(
            child.try_wait().unwrap().is_none(),
            "a pid with another marker is left alone"
        );
        stop_process(pid, "sleep 30").unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
    }

    #[test]
    fn cloud_entries_without_their_provider_stay_on_record() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::create(dir.path(), "r-cloud").unwrap();
        ledger
            .record(
                Resource::Cloud {
                    provider: "aws".into(),
                    kind: "instance".into(),
                    id: "i-1".into(),
                    region: None,
                },
                "builder",
            )
            .unwrap();
        let errors = ledger.unwind(None);
        assert_eq!(errors.len(), 1);
        assert!(dir.path().join("r-cloud.json").exists());
    }
}
