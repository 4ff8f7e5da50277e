//! The crate's error type and the exit codes it maps to.

use std::path::Path;

/// Everything that can stop a Bakery command, grouped by who can fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file, a suite file or a command-line argument is wrong: the user fixes it.
    #[error("{0}")]
    Config(String),
    /// A file or directory could not be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The image could not be produced: a provisioner failed.
    #[error("{0}")]
    Build(String),
    /// The machinery failed: a VM did not boot, a tool is missing, the cloud refused a call.
    #[error("{0}")]
    Infra(String),
    /// The connection to an instance failed or a command on it timed out.
    #[error("{0}")]
    Transport(String),
    /// The cloud endpoint could not be reached, or answered with something that is not its API
    /// (an HTML page, a call it does not implement).
    #[error("{0}")]
    Endpoint(String),
    /// A signal (its number) asked the run to stop.
    #[error("interrupted by {}", crate::signals::name(*.0))]
    Interrupted(i32),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code: every gate passed.
pub const EXIT_OK: i32 = 0;
/// Exit code: the image failed: a provisioner or a gate (a check failed or could not be
/// evaluated).
pub const EXIT_GATE_FAILED: i32 = 1;
/// Exit code: usage or configuration error.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code: infrastructure error.
pub const EXIT_INFRA: i32 = 3;

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => EXIT_CONFIG,
            Error::Build(_) => EXIT_GATE_FAILED,
            Error::Io { .. } | Error::Infra(_) | Error::Transport(_) | Error::Endpoint(_) => {
                EXIT_INFRA
            }
            Error::Interrupted(signal) => 128 + signal,
        }
    }

    /// An I/O error on `path`, described by `what` ("reading", "creating", ...).
    pub fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            context: format!("{what} {}", path.display()),
            source,
        }
    }
}

/// Adds a path and a verb to an `io::Result`.
pub trait IoContext<T> {
    /// Turns an `io::Error` into [`Error::Io`] naming `what` was done to `path`.
    fn at(self, what: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(what, path, e))
    }
}
