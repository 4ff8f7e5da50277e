//! Building a local base image from distribution packages (`bakery image bootstrap debian-12`).
//!
//! The image is what a cloud's stock image is: a small Debian with a kernel, systemd, OpenSSH,
//! curl and cloud-init set to read NoCloud seed data, on a disk that boots by itself: an MBR
//! partition table, GRUB for BIOS in the MBR and the gap before the first partition, and one
//! ext4 partition. QEMU's BIOS (SeaBIOS) starts GRUB, GRUB starts the kernel `/boot/grub/grub.cfg`
//! names, so a bake that installs another kernel (whose package runs `update-grub`) is verified
//! on that kernel, as on EC2.
//!
//! GRUB for BIOS rather than UEFI: SeaBIOS reaches the boot loader in about 2 s under software
//! emulation where OVMF needs 19 s (measured side by side, 2026-12), and it needs no EFI system
//! partition, no FAT tools on the host and no firmware variables per instance. Its cost is the
//! reading of the kernel and initramfs through BIOS disk calls, so the initramfs holds only the
//! modules a QEMU guest needs (`MODULES=list`).

use std::ffi::OsStr;
use std::path::Path;

use super::store::{ImageRecord, Store};
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
pub const RECIPE: &str = "4";

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
        "grub-pc",
        "zstd",
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

/// Where the root partition starts: 1 MiB, the usual alignment, which leaves GRUB's core image
/// the sectors between the MBR and the partition.
const PARTITION_START: u64 = 1 << 20;

/// The size of the whole disk.
const DISK_BYTES: u64 = 4 << 30;

/// GRUB settings for `update-grub` (which a kernel package runs): no menu and no wait, the
/// menu and the kernel's messages on the serial console (the local provider reads the host keys
/// from there), predictable interface names, no other systems to look for.
const GRUB_DEFAULTS: &str = r#"# Bakery's settings for a boot under QEMU (see also /etc/default/grub)
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0 net.ifnames=0"
GRUB_TERMINAL="serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
"#;

/// The boot menu of the base image, written by hand (`update-grub` cannot find the root
/// device inside the bootstrap's chroot). It boots `/vmlinuz` and `/initrd.img`, the links the
/// kernel packages keep to the newest kernel; the first `update-grub` replaces it.
fn grub_cfg(uuid: &str) -> String {
    format!(
        r#"# Written by `bakery image bootstrap`; `update-grub` replaces it.
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry Debian {{
  insmod part_msdos
  insmod ext2
  search --no-floppy --fs-uuid --set=root {uuid}
  linux /vmlinuz root=UUID={uuid} ro console=ttyS0 net.ifnames=0
  initrd /initrd.img
}}
"#
    )
}

/// initramfs settings: only the modules that find the root disk of a QEMU guest (ext4 is
/// built into the kernel). The default (`most`) triples the initramfs, and under emulation
/// GRUB reads every byte of it through slow BIOS disk calls.
const INITRAMFS_CONF: &str = "MODULES=list\n";
const INITRAMFS_MODULES: &str = "virtio_pci\nvirtio_blk\nvirtio_scsi\n";

/// The GRUB modules built into the core image: enough to read `/boot/grub` from the ext4
/// partition; everything else loads from there.
const CORE_MODULES: &str = "biosdisk part_msdos ext2";

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
    let uuid = new_uuid();
    let upload = |file: &str, text: &str, to: &str| -> Result<String> {
        let path = work.join(file);
        std::fs::write(&path, text).at("writing", &path)?;
        Ok(format!("upload {} {to}", path.display()))
    };
    let rootfs = work.join("rootfs");

    let hooks = [
        format!(
            r#"echo "UUID={uuid} / ext4 rw,discard,errors=remount-ro 0 1" > "$1/etc/fstab""#
        ),
        r#"mkdir -p "$1/etc/default/grub.d" "$1/etc/initramfs-tools/conf.d" "$1/boot/grub/i386-pc""#
            .to_string(),
        upload("network", NETWORK, "/etc/systemd/network/20-wired.network")?,
        upload("99-bakery.cfg", CLOUD_CFG, "/etc/cloud/cloud.cfg.d/99-bakery.cfg")?,
        upload("grub-defaults", GRUB_DEFAULTS, "/etc/default/grub.d/bakery.cfg")?,
        upload("grub.cfg", &grub_cfg(&uuid), "/boot/grub/grub.cfg")?,
        upload(
            "initramfs.conf",
            INITRAMFS_CONF,
            "/etc/initramfs-tools/conf.d/bakery.conf",
        )?,
        upload(
            "initramfs-modules",
            INITRAMFS_MODULES,
            "/etc/initramfs-tools/modules",
        )?,
        r#"chroot "$1" update-initramfs -u -k all"#.to_string(),
        // What `grub-install` does, without the block device it insists on: the modules into
        // /boot/grub, and a core image that finds them on the first partition. The boot
        // sectors are written below, with the partition table.
        r#"cp "$1"/usr/lib/grub/i386-pc/*.mod "$1"/usr/lib/grub/i386-pc/*.lst "$1"/usr/lib/grub/i386-pc/boot.img "$1/boot/grub/i386-pc/""#
            .to_string(),
        format!(
            r#"chroot "$1" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img -p "(hd0,msdos1)/boot/grub" {CORE_MODULES}"#
        ),
        // A later upgrade of grub-pc inside the guest reinstalls GRUB on the disk it boots.
        r#"echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | chroot "$1" debconf-set-selections"#
            .to_string(),
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

    let raw = work.join("disk.raw");
    std::fs::File::create(&raw)
        .and_then(|f| f.set_len(DISK_BYTES))
        .at("creating", &raw)?;
    let offset = format!("offset={PARTITION_START}");
    let fs_size = format!("{}k", (DISK_BYTES - PARTITION_START) / 1024);
    tools::run(
        "mkfs.ext4",
        &[
            OsStr::new("-q"),
            OsStr::new("-F"),
            OsStr::new("-L"),
            OsStr::new("root"),
            OsStr::new("-U"),
            OsStr::new(&uuid),
            OsStr::new("-E"),
            OsStr::new(&offset),
            OsStr::new("-d"),
            rootfs.as_os_str(),
            raw.as_os_str(),
            OsStr::new(&fs_size),
        ],
    )?;
    let grub = rootfs.join("boot/grub/i386-pc");
    let boot_img = std::fs::read(grub.join("boot.img")).at("reading", &grub)?;
    let core_img = std::fs::read(grub.join("core.img")).at("reading", &grub)?;
    write_boot_sectors(&raw, &boot_img, &core_img)?;

    let id = new_id("ami");
    let image_dir = store.image_dir(&id);
    std::fs::create_dir_all(&image_dir).at("creating", &image_dir)?;
    let image_token = ledger.record(
        Resource::Path {
            path: image_dir.clone(),
        },
        "image being created",
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
        // The disk boots by itself.
        boot: None,
    };
    store.save(&record)?;
    ledger.forget(image_token)?;
    ledger.release(scratch, None)?;
    Ok(record)
}

/// A random (version 4) UUID for the root filesystem.
fn new_uuid() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The first sector of a disk with GRUB's boot code (`boot.img`) and one bootable Linux
/// partition from [`PARTITION_START`] to the end of a disk of `disk_bytes`.
fn master_boot_record(boot_img: &[u8], disk_bytes: u64) -> Result<[u8; 512]> {
    if boot_img.len() != 512 {
        return Err(Error::Infra(format!(
            "GRUB's boot.img has {} bytes, not 512: the grub-pc package is not what Bakery knows",
            boot_img.len()
        )));
    }
    let mut mbr = [0u8; 512];
    // Boot code only: the disk signature and the partition table follow it.
    mbr[..440].copy_from_slice(&boot_img[..440]);
    let start = PARTITION_START / 512;
    let sectors = disk_bytes / 512 - start;
    let entry = &mut mbr[446..462];
    // Active, CHS fields saying "use LBA", type 0x83 (Linux).
    entry[..8].copy_from_slice(&[0x80, 0xfe, 0xff, 0xff, 0x83, 0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    Ok(mbr)
}

/// Writes the MBR and GRUB's core image (into the sectors before the partition) to `raw`.
fn write_boot_sectors(raw: &Path, boot_img: &[u8], core_img: &[u8]) -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let room = PARTITION_START - 512;
    if core_img.len() as u64 > room {
        return Err(Error::Infra(format!(
            "GRUB's core image has {} bytes; only {room} fit before the first partition",
            core_img.len()
        )));
    }
    let mbr = master_boot_record(boot_img, DISK_BYTES)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(raw)
        .at("opening", raw)?;
    file.write_all(&mbr)
        .and_then(|_| file.seek(SeekFrom::Start(512)))
        .and_then(|_| file.write_all(core_img))
        .at("writing boot sectors to", raw)
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

    #[test]
    fn the_boot_record_holds_grubs_code_and_one_bootable_partition() {
        let boot_img: Vec<u8> = (0..512).map(|i| (i % 251) as u8).collect();
        let mbr = master_boot_record(&boot_img, 4 << 30).unwrap();
        assert_eq!(&mbr[..440], &boot_img[..440], "GRUB's boot code");
        assert_eq!(&mbr[440..446], &[0; 6], "no disk signature");
        let entry = &mbr[446..462];
        assert_eq!(entry[0], 0x80, "active");
        assert_eq!(entry[4], 0x83, "Linux");
        let start = u32::from_le_bytes(entry[8..12].try_into().unwrap());
        let sectors = u32::from_le_bytes(entry[12..16].try_into().unwrap());
        assert_eq!(start, 2048, "starts at 1 MiB");
        assert_eq!(
            u64::from(start + sectors) * 512,
            4 << 30,
            "ends at the disk's end"
        );
        assert_eq!(&mbr[462..510], &[0; 48], "one partition only");
        assert_eq!(&mbr[510..], &[0x55, 0xaa]);
        let err = master_boot_record(&boot_img[..100], 4 << 30).unwrap_err();
        assert!(err.to_string().contains("boot.img has 100 bytes"), "{err}");
    }

    #[test]
    fn a_core_image_too_big_for_the_gap_is_refused_and_a_fitting_one_lands_at_sector_1() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        std::fs::File::create(&raw)
            .unwrap()
            .set_len(2 * PARTITION_START)
            .unwrap();
        let boot_img = vec![0xeb; 512];
        let too_big = vec![1u8; PARTITION_START as usize];
        let err = write_boot_sectors(&raw, &boot_img, &too_big).unwrap_err();
        assert!(
            err.to_string().contains("before the first partition"),
            "{err}"
        );
        write_boot_sectors(&raw, &boot_img, &[7u8; 1000]).unwrap();
        let disk = std::fs::read(&raw).unwrap();
        assert_eq!(disk[0], 0xeb);
        assert_eq!(&disk[510..512], &[0x55, 0xaa]);
        assert_eq!(&disk[512..1512], &[7u8; 1000][..]);
        assert_eq!(
            disk.len() as u64,
            2 * PARTITION_START,
            "the disk keeps its size"
        );
    }

    #[test]
    fn uuids_are_random_version_4() {
        let (a, b) = (new_uuid(), new_uuid());
        assert_ne!(a, b);
        let parts: Vec<_> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{a}");
        assert_eq!(&a[14..15], "4", "{a}");
    }
}
