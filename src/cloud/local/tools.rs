//! The host programs the local provider runs, and what to say when one is missing.

use std::process::Command;

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

/// Runs a program to completion; a non-zero exit is an error quoting its stderr.
pub fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| missing(program, e))?;
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
