//! The commit a pipeline runs for, for image names and the `bakery:commit` tag.

use std::path::Path;
use std::process::Command;

/// The commit being baked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
}

impl Commit {
    /// The first 7 characters of the sha.
    pub fn short_sha(&self) -> &str {
        &self.sha[..self.sha.len().min(7)]
    }
}

/// `GITHUB_SHA` when running in GitHub Actions, else the `HEAD` of the repository containing
/// `dir`; `None` outside a repository.
pub fn current_commit(dir: &Path) -> Option<Commit> {
    if let Ok(sha) = std::env::var("GITHUB_SHA") {
        if !sha.trim().is_empty() {
            return Some(Commit {
                sha: sha.trim().to_string(),
            });
        }
    }
    let out = Command::new("git")
        .args(["rev-parse", "--verify", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !sha.is_empty()).then_some(Commit { sha })
}
