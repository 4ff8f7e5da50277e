//! Choosing QEMU's accelerator: KVM where it works, TCG (software emulation) otherwise.
//!
//! A `/dev/kvm` that opens is not proof: on some hosts KVM guests hang before the kernel prints
//! a line. So the first time, Bakery boots the image under KVM for a few seconds (its disk,
//! through its boot loader, discarding any writes; or the kernel of an older base image booted
//! directly) and watches the serial console for the kernel's first line; the verdict is
//! remembered per QEMU and host kernel version.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::store::{write_json, DirectBoot};
use crate::error::Result;

/// How long a KVM guest gets to print its first kernel line.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// The processor an emulated (TCG) guest sees: QEMU's baseline 64-bit model with the
/// x86-64-v2 extensions.
pub const TCG_CPU: &str = "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16";

/// What a KVM probe boots: something known to print the kernel's messages on the serial
/// console.
#[derive(Debug, Clone, Copy)]
pub enum ProbeBoot<'a> {
    /// A disk that boots by itself (its writes are discarded).
    Disk(&'a Path),
    /// A kernel booted directly, with no disk.
    Kernel(&'a DirectBoot),
}

/// The accelerator instances run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// QEMU arguments selecting this accelerator.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            // Under TCG, a plain x86-64-v2 processor (what RHEL 9 and its rebuilds require;
            // Debian and Ubuntu need less) rather than `max`: with `max`, a guest boots about
            // twice as slowly after a reset (a reboot, a hard reset) as it did the first time,
            // and a reboot experiment's time to recover measured QEMU, not the image
            // (BENCHMARKS.md, "A processor model for emulated guests").
            Accel::Tcg => &["-accel", "tcg,thread=multi", "-cpu", TCG_CPU],
        }
    }
}

/// The variable that caps every local guest's virtual CPUs (a whole number, at least 1).
pub const MAX_CPUS_VAR: &str = "BAKERY_LOCAL_MAX_CPUS";

/// The virtual CPUs a guest asking for `requested` gets: `requested`, or fewer where
/// `BAKERY_LOCAL_MAX_CPUS` says so. A host that runs several emulated guests at once (runs side
/// by side, a test suite) loses time with more virtual CPUs than it has cores: an emulated
/// guest's processors spin on locks held by a processor the host has descheduled
/// (BENCHMARKS.md, "Virtual CPUs of emulated guests running side by side").
pub fn vcpus(requested: u32) -> Result<u32> {
    capped(
        requested,
        std::env::var_os(MAX_CPUS_VAR)
            .as_deref()
            .map(|v| v.to_string_lossy())
            .as_deref(),
    )
}

fn capped(requested: u32, max: Option<&str>) -> Result<u32> {
    let Some(value) = max else {
        return Ok(requested);
    };
    match value.trim().parse::<u32>() {
        Ok(max) if max >= 1 => Ok(requested.min(max)),
        _ => Err(crate::Error::Config(format!(
            "{MAX_CPUS_VAR}={value} is not a number of virtual CPUs; use a whole number of at least 1, or unset it"
        ))),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Verdict {
    host: String,
    accel: Accel,
    reason: String,
}

/// Picks the accelerator: `BAKERY_ACCEL` if set, else a remembered verdict for this host, else
/// a probe boot of `boot` (remembered in `cache`).
pub fn choose(cache: &Path, boot: Option<ProbeBoot<'_>>) -> Result<Accel> {
    match std::env::var("BAKERY_ACCEL").ok().as_deref() {
        Some("kvm") => return Ok(Accel::Kvm),
        Some("tcg") => return Ok(Accel::Tcg),
        Some(other) if !other.is_empty() => {
            return Err(crate::Error::Config(format!(
                "BAKERY_ACCEL={other} is not an accelerator; use `kvm` or `tcg`"
            )))
        }
        _ => {}
    }
    if !kvm_device_usable() {
        return Ok(Accel::Tcg);
    }
    let host = host_signature();
    if let Ok(text) = std::fs::read_to_string(cache) {
        if let Ok(v) = serde_json::from_str::<Verdict>(&text) {
            if v.host == host {
                return Ok(v.accel);
            }
        }
    }
    let Some(boot) = boot else {
        // Nothing small to boot: stay safe without remembering, a later base image will probe.
        return Ok(Accel::Tcg);
    };
    let (accel, reason) = probe(cache.parent().unwrap_or(Path::new(".")), boot)?;
    tracing::info!(?accel, %reason, "accelerator chosen");
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    write_json(
        cache,
        &Verdict {
            host,
            accel,
            reason,
        },
    )?;
    Ok(accel)
}

fn kvm_device_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

fn host_signature() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    format!("{} / {}", kernel.trim(), qemu.trim())
}

/// Boots `boot` under KVM and waits for the kernel to print. A signal (Ctrl-C,
/// SIGTERM) stops the wait at once; the probe's QEMU is killed and its console file removed
/// however the wait ends, and dies with Bakery if Bakery is killed outright.
fn probe(dir: &Path, boot: ProbeBoot<'_>) -> Result<(Accel, String)> {
    use std::os::unix::process::CommandExt;
    let console = dir.join(format!("kvm-probe-{}.log", std::process::id()));
    let mut cmd = Command::new("qemu-system-x86_64");
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.args(Accel::Kvm.args()).args([
        "-m",
        "256",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
    ]);
    match boot {
        ProbeBoot::Kernel(boot) => {
            cmd.arg("-kernel")
                .arg(&boot.kernel)
                .args(["-append", "console=ttyS0 panic=-1"]);
        }
        ProbeBoot::Disk(disk) => {
            cmd.arg("-drive").arg(format!(
                "file={},if=virtio,format=qcow2,snapshot=on",
                disk.display()
            ));
        }
    }
    let child = cmd
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Ok((Accel::Tcg, format!("could not start QEMU with KVM: {e}"))),
    };
    let started = Instant::now();
    let verdict = loop {
        if let Err(interrupted) = crate::signals::check() {
            break Err(interrupted);
        }
        let printed = std::fs::read_to_string(&console).unwrap_or_default();
        if printed.contains("Linux version") {
            break Ok((
                Accel::Kvm,
                format!(
                    "a KVM guest printed its first line in {:.1?}",
                    started.elapsed()
                ),
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut stderr);
            }
            break Ok((
                Accel::Tcg,
                format!("QEMU with KVM exited ({status}): {}", stderr.trim()),
            ));
        }
        if started.elapsed() > PROBE_TIMEOUT {
            break Ok((
                Accel::Tcg,
                format!(
                    "a KVM guest printed nothing in {}s: KVM hangs here",
                    PROBE_TIMEOUT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&console);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_lowers_and_never_raises_a_guests_cpus() {
        assert_eq!(capped(2, None).unwrap(), 2);
        assert_eq!(capped(2, Some("1")).unwrap(), 1);
        assert_eq!(capped(1, Some("4")).unwrap(), 1);
        assert_eq!(capped(4, Some(" 2 ")).unwrap(), 2);
        for bad in ["0", "", "two", "-1", "1.5"] {
            let e = capped(2, Some(bad)).unwrap_err().to_string();
            assert!(e.contains(&format!("BAKERY_LOCAL_MAX_CPUS={bad} ")), "{e}");
            assert!(e.contains("at least 1"), "{e}");
        }
    }
}
