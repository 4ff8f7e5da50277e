//! Building a local base image from distribution packages (`bakery image bootstrap debian-12`).
//!
//! The image is what a cloud's stock image is: a small Debian with a kernel, systemd, OpenSSH,
//! curl and cloud-init set to read NoCloud seed data. It has no boot loader; QEMU boots its
//! kernel directly, and images baked from it inherit that.

use std::ffi::OsStr;
use std::path::Path;

use super::store::{DirectBoot, ImageRecord, Store};
use super::tools;
use crate::cloud::{new_id, Image, Tags};
use crate::error::{Error, IoContext, Result};
use crate::ledger::{Ledger, Resource};

/// The tag naming the distribution a base image was bootstrapped as.
pub const BASE_TAG: &str = "bakery:base";

/// The tag naming the version of the recipe below that built a base image.
pub const RECIPE_TAG: &str = "bakery:base-recipe";

/// The version of the recipe (packages, settings) below. `source: {local: …}` uses only base
/// images built by this version, so a Bakery whose recipe changed bootstraps a new one.
pub const RECIPE: &str = "3";

/// A distribution Bakery can bootstrap.
struct Distro {
    name: &'static str,
    suite: &'static str,
    mirror: &'static str,
    packages: &'static [&'static str],
}

const DISTROS: &[Distro] = &[Distro {
    name: "debian-12",
    suite: "bookworm",
    mirror: "http://deb.debian.org/debian",
    packages: &[
        "systemd-sysv",
        "linux-image-cloud-amd64",
        "openssh-server",
        "openssh-sftp-server",
        "iproute2",
        "systemd-resolved",
        "udev",
        "kmod",
        "procps",
        "dbus",
        "cloud-init",
        "curl",
        "ca-certificates",
        "netbase",
        "sudo",
    ],
}];

/// The names `bootstrap` accepts.
pub fn known() -> Vec<&'static str> {
    DISTROS.iter().map(|d| d.name).collect()
}

/// True for a base image of distribution `name` built by this version of the recipe.
pub fn is_current_base(image: &Image, name: &str) -> bool {
    let tag = |key: &str| image.tags.get(key).map(String::as_str);
    tag(BASE_TAG) == Some(name) && tag(RECIPE_TAG) == Some(RECIPE)
}

/// cloud-init settings baked into the image: read only NoCloud seeds, leave networking to
/// systemd-networkd, and run only the modules an image factory needs (each costs seconds when
/// emulated).
const CLOUD_CFG: &str = r#"datasource_list: [ NoCloud, None ]
datasource:
  NoCloud:
    fs_label: cidata
network: {config: disabled}
disable_root: false
ssh_pwauth: false
preserve_hostname: false
manage_etc_hosts: true
apt:
  preserve_sources_list: true
cloud_init_modules: [seed_random, bootcmd, write-files, resizefs, set_hostname, update_hostname, update_etc_hosts, users-groups, ssh]
cloud_config_modules: [set-passwords, apt-configure, runcmd]
cloud_final_modules: [package-update-upgrade-install, write-files-deferred, scripts-vendor, scripts-per-once, scripts-per-boot, scripts-per-instance, scripts-user, final-message, power-state-change]
"#;

/// systemd-networkd configures the NIC by DHCP (DNS through systemd-resolved). It needs no
/// `udevadm settle`, which cost ifupdown 4 s of every emulated boot.
const NETWORK: &str = "[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n";

/// apt options kept in the image: no translated package descriptions (32 MB of lists).
const APT_OPTIONS: &str = r#"Acquire::Languages "none";"#;

/// Timers and services that only slow an emulated boot or change the image behind its back.
const MASKED: &str = "apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer";

/// Builds base image `name` into the store; `work` is a scratch directory on the same
/// filesystem, recorded in the ledger by this function before it is created.
pub fn bootstrap(store: &Store, name: &str, work: &Path, ledger: &Ledger) -> Result<ImageRecord> {
    let distro = DISTROS.iter().find(|d| d.name == name).ok_or_else(|| {
        Error::Config(format!(
            "cannot bootstrap `{name}`; known base images: {}",
            known().join(", ")
        ))
    })?;
    let scratch = ledger.record(
        Resource::Path {
            path: work.to_path_buf(),
        },
        "bootstrap scratch",
    )?;
    crate::progress::announce("bootstrap");
    std::fs::create_dir_all(work).at("creating", work)?;
    let cfg = work.join("99-bakery.cfg");
    std::fs::write(&cfg, CLOUD_CFG).at("writing", &cfg)?;
    let network = work.join("network");
    std::fs::write(&network, NETWORK).at("writing", &network)?;
    let rootfs = work.join("rootfs");

    let hooks = [
        r#"echo "/dev/vda / ext4 rw,discard,errors=remount-ro 0 1" > "$1/etc/fstab""#.to_string(),
        format!(
            "upload {} /etc/systemd/network/20-wired.network",
            network.display()
        ),
        format!(
            "upload {} /etc/cloud/cloud.cfg.d/99-bakery.cfg",
            cfg.display()
        ),
        r#"rm -f "$1"/etc/ssh/ssh_host_*"#.to_string(),
        r#"rm -f "$1/etc/hostname"; : > "$1/etc/machine-id""#.to_string(),
        r#"ln -sf ../run/systemd/resolve/stub-resolv.conf "$1/etc/resolv.conf""#.to_string(),
        r#"chroot "$1" passwd -l root"#.to_string(),
        r#"chroot "$1" systemctl enable systemd-networkd systemd-resolved"#.to_string(),
        format!(r#"chroot "$1" systemctl mask {MASKED}"#),
    ];
    let mut args: Vec<String> = vec![
        "--variant=minbase".into(),
        format!("--include={}", distro.packages.join(",")),
        format!("--aptopt={APT_OPTIONS}"),
        // The package lists stay, so that a provisioner's `apt-get update` only checks that
        // they are current (seconds) instead of downloading 50 MB and parsing it emulated.
        "--skip=cleanup/apt/lists".into(),
    ];
    args.extend(hooks.iter().map(|h| format!("--customize-hook={h}")));
    args.extend([
        distro.suite.to_string(),
        rootfs.display().to_string(),
        distro.mirror.to_string(),
    ]);
    let os_args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    tools::run("mmdebstrap", &os_args)?;

    let id = new_id("ami");
    let image_dir = store.image_dir(&id);
    let boot_dir = image_dir.join("boot");
    std::fs::create_dir_all(&boot_dir).at("creating", &boot_dir)?;
    let image_token = ledger.record(
        Resource::Path {
            path: image_dir.clone(),
        },
        "image being created",
    )?;
    let kernel = boot_dir.join("vmlinuz");
    let initrd = boot_dir.join("initrd.img");
    copy_newest(&rootfs.join("boot"), "vmlinuz-", &kernel)?;
    copy_newest(&rootfs.join("boot"), "initrd.img-", &initrd)?;

    let raw = work.join("disk.raw");
    std::fs::File::create(&raw)
        .and_then(|f| f.set_len(4 << 30))
        .at("creating", &raw)?;
    tools::run(
        "mkfs.ext4",
        &[
            OsStr::new("-q"),
            OsStr::new("-F"),
            OsStr::new("-L"),
            OsStr::new("root"),
            OsStr::new("-d"),
            rootfs.as_os_str(),
            raw.as_os_str(),
        ],
    )?;
    let disk = store.disk(&id);
    tools::run(
        "qemu-img",
        &[
            OsStr::new("convert"),
            OsStr::new("-O"),
            OsStr::new("qcow2"),
            raw.as_os_str(),
            disk.as_os_str(),
        ],
    )?;
    let record = ImageRecord {
        image: Image {
            id,
            name: name.to_string(),
            parent: None,
            tags: Tags::from([
                (BASE_TAG.to_string(), name.to_string()),
                (RECIPE_TAG.to_string(), RECIPE.to_string()),
            ]),
            state: "available".into(),
            created: crate::clock::now_rfc3339(),
            size_bytes: 0,
        },
        boot: Some(DirectBoot {
            kernel,
            initrd,
            append: "root=/dev/vda rw console=ttyS0 net.ifnames=0".into(),
        }),
    };
    store.save(&record)?;
    ledger.forget(image_token)?;
    ledger.release(scratch, None)?;
    Ok(record)
}

/// Copies the newest file in `dir` whose name starts with `prefix` to `to`.
fn copy_newest(dir: &Path, prefix: &str, to: &Path) -> Result<()> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .at("listing", dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    found.sort();
    let from = found.pop().ok_or_else(|| {
        Error::Infra(format!(
            "no {prefix}* in {}: the kernel package did not install",
            dir.display()
        ))
    })?;
    std::fs::copy(&from, to).at("copying", &from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[(&str, &str)]) -> Image {
        Image {
            id: "ami-1".into(),
            name: "debian-12".into(),
            parent: None,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state: "available".into(),
            created: String::new(),
            size_bytes: 0,
        }
    }

    #[test]
    fn only_a_base_of_this_recipe_is_current() {
        let current = image(&[(BASE_TAG, "debian-12"), (RECIPE_TAG, RECIPE)]);
        assert!(is_current_base(&current, "debian-12"));
        assert!(!is_current_base(&current, "debian-13"));
        let older = image(&[(BASE_TAG, "debian-12"), (RECIPE_TAG, "1")]);
        assert!(!is_current_base(&older, "debian-12"));
        let untagged = image(&[(BASE_TAG, "debian-12")]);
        assert!(!is_current_base(&untagged, "debian-12"));
    }
}
