//! Starting a QEMU virtual machine for one instance.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::accel::Accel;
use super::store::DirectBoot;
use crate::error::{IoContext, Result};

/// Everything QEMU needs to run one instance; all files live in `dir`.
pub struct Machine<'a> {
    pub dir: &'a Path,
    pub disk: &'a Path,
    pub seed: &'a Path,
    /// A kernel to boot directly (base images of earlier Bakery versions); `None` boots the
    /// disk through its own boot loader.
    pub boot: Option<&'a DirectBoot>,
    pub cpus: u32,
    pub memory_mb: u32,
    /// 127.0.0.1 port → guest port, the guest's port 22 among them.
    pub forwards: &'a [(u16, u16)],
    pub accel: Accel,
}

impl Machine<'_> {
    /// The serial console log (the local equivalent of EC2's console output).
    pub fn console_path(dir: &Path) -> PathBuf {
        dir.join("console.log")
    }

    /// The QMP control socket.
    pub fn qmp_path(dir: &Path) -> PathBuf {
        dir.join("qmp.sock")
    }

    /// QEMU's command line.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |s: &str| args.push(s.into());
        push("-name");
        push(&format!(
            "bakery-{}",
            self.dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        push("-machine");
        push("q35");
        for a in self.accel.args() {
            push(a);
        }
        push("-smp");
        push(&self.cpus.to_string());
        push("-m");
        push(&self.memory_mb.to_string());
        for a in [
            "-nodefaults",
            "-display",
            "none",
            "-device",
            "virtio-rng-pci",
        ] {
            push(a);
        }
        if let Some(boot) = self.boot {
            push("-kernel");
            push(&boot.kernel.display().to_string());
            push("-initrd");
            push(&boot.initrd.display().to_string());
            push("-append");
            push(&boot.append);
        }
        // The disk is what the BIOS boots (through the image's own boot loader), not the seed.
        push("-drive");
        push(&format!(
            "file={},if=none,id=disk0,format=qcow2,discard=unmap",
            self.disk.display()
        ));
        push("-device");
        push("virtio-blk-pci,drive=disk0,bootindex=1");
        push("-drive");
        push(&format!(
            "file={},if=virtio,format=raw,media=cdrom,readonly=on",
            self.seed.display()
        ));
        push("-netdev");
        let mut netdev = String::from("user,id=n0");
        for (host, guest) in self.forwards {
            netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        push(&netdev);
        push("-device");
        push("virtio-net-pci,netdev=n0,id=nic0");
        push("-serial");
        push(&format!("file:{}", Self::console_path(self.dir).display()));
        push("-qmp");
        push(&format!(
            "unix:{},server=on,wait=off",
            Self::qmp_path(self.dir).display()
        ));
        args
    }

    /// Starts QEMU. It dies with the thread that started it, so a Bakery killed outright
    /// leaves no virtual machine running (its files stay for `bakery cleanup`).
    pub fn spawn(&self) -> Result<Child> {
        spawn(self.dir, &self.args())
    }
}

/// Starts QEMU with `args`, logging to `dir/qemu.log` (appended to: a machine stopped and
/// started again keeps one log). It dies with the thread that started it.
pub fn spawn(dir: &Path, args: &[OsString]) -> Result<Child> {
    {
        let log_path = dir.join("qemu.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .at("creating", &log_path)?;
        let log2 = log.try_clone().at("opening", &log_path)?;
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(args).stdin(Stdio::null()).stdout(log).stderr(log2);
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.spawn()
            .map_err(|e| super::tools::missing("qemu-system-x86_64", e))
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| crate::Error::Infra(format!("finding a free port on 127.0.0.1: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| crate::Error::Infra(format!("finding a free port: {e}")))?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(boot: Option<&DirectBoot>) -> Vec<String> {
        let dir = Path::new("/data/instances/i-1");
        Machine {
            dir,
            disk: &dir.join("disk.qcow2"),
            seed: &dir.join("seed.iso"),
            boot,
            cpus: 2,
            memory_mb: 1024,
            forwards: &[(2222, 22)],
            accel: Accel::Tcg,
        }
        .args()
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
    }

    #[test]
    fn an_image_boots_from_its_disk_unless_it_has_a_kernel_to_boot_directly() {
        let from_disk = args(None);
        assert!(!from_disk.iter().any(|a| a == "-kernel"), "{from_disk:?}");
        // The BIOS boots the disk, not the seed beside it.
        let device = from_disk
            .iter()
            .find(|a| a.starts_with("virtio-blk-pci,drive=disk0"))
            .expect("the disk is a device of its own");
        assert!(device.ends_with("bootindex=1"), "{device}");
        assert!(from_disk
            .iter()
            .any(|a| a.starts_with("file=/data/instances/i-1/disk.qcow2,if=none,id=disk0")));

        let direct = DirectBoot {
            kernel: "/data/images/ami-1/boot/vmlinuz".into(),
            initrd: "/data/images/ami-1/boot/initrd.img".into(),
            append: "root=/dev/vda rw console=ttyS0".into(),
        };
        let old = args(Some(&direct));
        let at = old.iter().position(|a| a == "-kernel").expect("-kernel");
        assert_eq!(old[at + 1], "/data/images/ami-1/boot/vmlinuz");
        assert!(old.iter().any(|a| a == "root=/dev/vda rw console=ttyS0"));
    }
}
