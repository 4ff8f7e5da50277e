//! The host programs the local provider runs, and what to say when one is missing.

use std::io::Read;
use std::process::{ChildStderr, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};

/// The Debian package that provides each program the local provider needs.
const PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    ("mmdebstrap", "mmdebstrap"),
    ("mkfs.ext4", "e2fsprogs"),
    ("genisoimage", "genisoimage"),
];

/// The error for a program that could not be started.
pub fn missing(program: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        let package = PACKAGES
            .iter()
            .find(|(p, _)| *p == program)
            .map_or(program, |(_, pkg)| pkg);
        Error::Infra(format!(
            "`{program}` is not installed; the local provider needs it (Debian/Ubuntu: `apt-get install {package}`, or run `scripts/setup.sh`)"
        ))
    } else {
        Error::Infra(format!("starting `{program}`: {e}"))
    }
}

/// Runs a program to completion; a non-zero exit is an error quoting its stderr. A signal to
/// Bakery stops the program and returns [`Error::Interrupted`].
pub fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| missing(program, e))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let drain = |pipe: Option<ChildPipe>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let (stdout, stderr) = (
        drain(stdout.map(ChildPipe::Out)),
        drain(stderr.map(ChildPipe::Err)),
    );
    loop {
        if let Err(e) = crate::signals::check() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(Error::Infra(format!("waiting for `{program}`: {e}"))),
        }
    }
    let output = Output {
        status: child
            .wait()
            .map_err(|e| Error::Infra(format!("waiting for `{program}`: {e}")))?,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::Infra(format!(
            "`{program}` failed ({}):\n{}",
            output.status,
            tail.join("\n")
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Either output pipe of a child, so one drain function reads both.
enum ChildPipe {
    Out(ChildStdout),
    Err(ChildStderr),
}

impl Read for ChildPipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ChildPipe::Out(p) => p.read(buf),
            ChildPipe::Err(p) => p.read(buf),
        }
    }
}
