//! scripts/setup.sh against a fake apt: the script runs with a PATH that holds only fake
//! `apt-get`, `apt-cache`, `dpkg-query`, `id` and tool commands, plus the few real utilities
//! the script uses, so nothing is installed on this machine.
//!
//! The fake apt behaves as apt did on a fresh machine that ships `qemu-utils` 10.0 from
//! bookworm-backports while apt's QEMU is 7.2: installing `qemu-system-x86` alone *removes*
//! `qemu-utils` (and with it `qemu-img`); asking for both without a version fails with "held
//! broken packages"; `qemu-utils=<QEMU's version>` with `--allow-downgrades` installs both.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const QEMU_CANDIDATE: &str = "1:7.2+dfsg-7+deb12u18+b3";

/// Which tool each fake package provides.
const PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "qemu-system-x86_64"),
    ("qemu-utils", "qemu-img"),
    ("mmdebstrap", "mmdebstrap"),
    ("genisoimage", "genisoimage"),
    ("e2fsprogs", "mkfs.ext4"),
    ("openssh-client", "ssh"),
];

/// A machine where every tool is installed at the versions apt would pick.
const EVERY_TOOL: &[(&str, &str)] = &[
    ("qemu-system-x86", QEMU_CANDIDATE),
    ("qemu-utils", QEMU_CANDIDATE),
    ("mmdebstrap", "1.3.5-7"),
    ("genisoimage", "9:1.1.11-3.4"),
    ("e2fsprogs", "1.47.0-2"),
    ("openssh-client", "1:9.2p1-2+deb12u7"),
];

/// The real utilities the scripts call, linked into the fake PATH.
const REAL: &[&str] = &[
    "bash", "env", "dirname", "awk", "mktemp", "rm", "sort", "comm", "tr", "cat", "grep", "touch",
    "ls", "sed", "chmod",
];

struct FakeMachine {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl FakeMachine {
    /// A machine with `installed` packages (name, version) and, when `cargo`, a Rust toolchain.
    /// `apt_removes` lists packages the fake apt removes whenever it installs anything (a
    /// stand-in for any dependency conflict).
    fn new(installed: &[(&str, &str)], cargo: bool, apt_removes: &[&str]) -> FakeMachine {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for d in ["bin", "pkgs"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        for tool in REAL {
            let real = which(tool).unwrap_or_else(|| panic!("{tool} is not on this machine"));
            std::os::unix::fs::symlink(real, root.join("bin").join(tool)).unwrap();
        }
        let m = FakeMachine { _dir: dir, root };
        for (pkg, version) in installed {
            m.install(pkg, version);
        }
        if cargo {
            m.script("cargo", "exit 0");
        }
        m.script("id", "echo 0");
        m.script(
            "apt-cache",
            &format!(
                "[ \"$1 $2\" = 'policy qemu-system-x86' ] || exit 0\n\
                 printf 'qemu-system-x86:\\n  Installed: (none)\\n  Candidate: {QEMU_CANDIDATE}\\n'"
            ),
        );
        m.script(
            "dpkg-query",
            &format!("ls {}", m.root.join("pkgs").display()),
        );
        let tools: String = PACKAGES
            .iter()
            .map(|(p, t)| format!("tool_{}={t}\n", p.replace('-', "_")))
            .collect();
        let removes = apt_removes.join(" ");
        m.script(
            "apt-get",
            &format!(
                r#"echo "apt-get $*" >> {log}
[ "$1" = update ] && exit 0
[ "$1" = install ] || exit 100
shift
{tools}
downgrades=false; want=""
for a in "$@"; do
  case "$a" in
    --allow-downgrades) downgrades=true ;;
    -*) ;;
    *) want="$want $a" ;;
  esac
done
pkgs={pkgs}; bin={bin}
installed_version() {{ cat "$pkgs/$1" 2>/dev/null; }}
utils=$(installed_version qemu-utils)
for w in $want; do
  case "$w" in
    qemu-utils) if [ -n "$utils" ] && [ "$utils" != "{QEMU_CANDIDATE}" ] && echo "$want" | grep -q qemu-system-x86; then
        echo "E: Unable to correct problems, you have held broken packages." >&2; exit 100; fi ;;
    qemu-utils=*) if [ -n "$utils" ] && [ "$utils" != "${{w#qemu-utils=}}" ] && ! $downgrades; then
        echo "E: Packages were downgraded and -y was used without --allow-downgrades." >&2; exit 100; fi ;;
    nonexistent*) echo "E: Unable to locate package $w" >&2; exit 100 ;;
  esac
done
for w in $want; do
  name=${{w%%=*}}; version={QEMU_CANDIDATE}
  case "$w" in *=*) version=${{w#*=}} ;; esac
  if [ "$name" = qemu-system-x86 ] && [ -n "$utils" ] && [ "$utils" != "{QEMU_CANDIDATE}" ] \
     && ! echo "$want" | grep -q "qemu-utils={QEMU_CANDIDATE}"; then
    rm -f "$pkgs/qemu-utils" "$bin/qemu-img"
  fi
  echo "$version" > "$pkgs/$name"
  eval "tool=\$tool_$(echo "$name" | tr - _)"
  printf '#!/bin/sh\nexit 0\n' > "$bin/$tool"; chmod +x "$bin/$tool"
done
for r in {removes}; do
  eval "tool=\$tool_$(echo "$r" | tr - _)"
  rm -f "$pkgs/$r" "$bin/$tool"
done
"#,
                log = m.root.join("apt.log").display(),
                pkgs = m.root.join("pkgs").display(),
                bin = m.root.join("bin").display(),
            ),
        );
        m
    }

    fn script(&self, name: &str, body: &str) {
        let path = self.root.join("bin").join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn install(&self, pkg: &str, version: &str) {
        std::fs::write(self.root.join("pkgs").join(pkg), format!("{version}\n")).unwrap();
        let tool = PACKAGES.iter().find(|(p, _)| *p == pkg).unwrap().1;
        self.script(tool, "exit 0");
    }

    fn has(&self, tool: &str) -> bool {
        self.root.join("bin").join(tool).exists()
    }

    fn apt_log(&self) -> String {
        std::fs::read_to_string(self.root.join("apt.log")).unwrap_or_default()
    }

    fn setup(&self) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup.sh");
        Command::new(self.root.join("bin/bash"))
            .arg(script)
            .env_clear()
            .env("PATH", self.root.join("bin"))
            .env("HOME", &self.root)
            .output()
            .unwrap()
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_newer_qemu_utils_is_replaced_by_the_version_that_matches_qemu() {
    let m = FakeMachine::new(
        &[
            ("qemu-utils", "1:10.0.2+ds-2+deb13u1~bpo12+1"),
            ("e2fsprogs", "1.47.0-2"),
            ("openssh-client", "1:9.2p1-2+deb12u7"),
        ],
        true,
        &[],
    );
    let out = m.setup();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(m.has("qemu-img"), "qemu-img was removed: {}", m.apt_log());
    assert!(m.has("qemu-system-x86_64"));
    assert!(m.has("mmdebstrap") && m.has("genisoimage"));
    let log = m.apt_log();
    let install = log.lines().find(|l| l.contains(" install ")).unwrap();
    assert!(install.contains("--allow-downgrades"), "{install}");
    assert!(
        install.contains(&format!("qemu-utils={QEMU_CANDIDATE}"))
            && install.contains("qemu-system-x86"),
        "QEMU and qemu-utils must be installed in one call, pinned together: {install}"
    );
}

#[test]
fn installing_qemu_alone_on_that_machine_loses_qemu_img() {
    // The fake apt reproduces the trap: this is what the old setup did, and what the new one
    // must not do.
    let m = FakeMachine::new(
        &[("qemu-utils", "1:10.0.2+ds-2+deb13u1~bpo12+1")],
        true,
        &[],
    );
    let out = Command::new(m.root.join("bin/apt-get"))
        .args(["install", "-y", "qemu-system-x86"])
        .env("PATH", m.root.join("bin"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!m.has("qemu-img"));
    assert!(m.has("qemu-system-x86_64"));
}

#[test]
fn a_tool_that_apt_removes_stops_setup_naming_it() {
    let m = FakeMachine::new(
        &[
            ("openssh-client", "1:9.2p1-2+deb12u7"),
            ("e2fsprogs", "1.47.0-2"),
        ],
        true,
        &["openssh-client"],
    );
    let out = m.setup();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("setup: ssh does not run after installing (package openssh-client)"),
        "{e}"
    );
    assert!(e.contains("apt removed: openssh-client"), "{e}");
}

#[test]
fn a_package_apt_cannot_install_stops_setup_at_once() {
    let m = FakeMachine::new(&[], true, &[]);
    // Make the install request fail the way apt does for a package it cannot find.
    m.script(
        "apt-get",
        &format!(
            "echo \"apt-get $*\" >> {}\n[ \"$1\" = update ] && exit 0\necho 'E: Unable to locate package mmdebstrap' >&2\nexit 100",
            m.root.join("apt.log").display()
        ),
    );
    let started = std::time::Instant::now();
    let out = m.setup();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("E: Unable to locate package mmdebstrap"), "{e}");
    assert!(e.contains("setup: apt-get could not install"), "{e}");
    assert!(
        e.contains("needed for: qemu-system-x86_64 qemu-img mmdebstrap genisoimage mkfs.ext4 ssh"),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn nothing_is_installed_when_every_tool_runs() {
    let m = FakeMachine::new(EVERY_TOOL, true, &[]);
    let out = m.setup();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(m.apt_log(), "");
}

#[test]
fn a_missing_rust_toolchain_is_named() {
    let m = FakeMachine::new(EVERY_TOOL, false, &[]);
    let out = m.setup();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cargo is missing"),
        "{}",
        stderr(&out)
    );
}
