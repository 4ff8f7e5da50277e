//! The image manifest: what an image holds (OS release, kernel, every package with its version
//! and architecture, enabled units, listening ports, local users).
//!
//! The bake stage reads it from the builder after provisioning with one script ([`SCRIPT`]),
//! in one round trip, and keeps it with the image: in the local store beside the disk, or, for
//! a provider whose images cannot hold a file (AWS), as `manifests/<image>.json` in the results
//! directory, referenced from the image's [`MANIFEST_TAG`] tag by its SHA-256. Beside the
//! JUnit file go a copy (`junit.manifest.json` for `junit.xml`) and the SBOM ([`sbom`],
//! `junit.cdx.json`), as the results document is `junit.json`.
//! [`diff`] compares two manifests; [`version`] orders package versions as dpkg and rpm do.

pub mod diff;
pub mod sbom;
pub mod version;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cloud::{Image, Provider, Tags};
use crate::error::{Error, IoContext, Result};

/// The version of the manifest's shape; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;
/// The tag naming an image's manifest file by its digest (`sha256:<hex>`), for providers that
/// keep the manifest in the results directory.
pub const MANIFEST_TAG: &str = "bakery:manifest";
/// An image's manifest among the files kept with it.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What an image holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// The image (empty while it is being baked).
    #[serde(default)]
    pub image: String,
    /// When it was read (RFC 3339).
    #[serde(default)]
    pub captured: String,
    /// Where it was read: `after provisioning`, or `before provisioning` for a source image
    /// read on the builder it started.
    #[serde(default)]
    pub captured_on: String,
    pub os: Os,
    pub kernel: Kernel,
    /// `dpkg`, `rpm`, or empty when neither is installed.
    pub package_manager: String,
    pub packages: Vec<Package>,
    /// Enabled unit files (`systemctl list-unit-files --state=enabled`).
    pub units: Vec<String>,
    /// Listening TCP sockets and bound, unconnected UDP sockets.
    pub ports: Vec<Port>,
    pub users: Vec<User>,
}

/// `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

/// The kernels of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kernel {
    /// `uname -r` on the machine it was read from.
    pub running: String,
    /// The versions of `/boot/vmlinuz-*`, oldest first.
    pub installed: Vec<String>,
    /// The kernel the image boots: the newest installed, else the running one.
    pub boots: String,
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// A listening socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Port {
    /// `tcp` or `udp`.
    pub protocol: String,
    pub address: String,
    pub port: u16,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.address.contains(':') {
            write!(f, "{}/[{}]:{}", self.protocol, self.address, self.port)
        } else {
            write!(f, "{}/{}:{}", self.protocol, self.address, self.port)
        }
    }
}

/// A local user (`getent passwd`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub home: String,
    pub shell: String,
}

/// The script that prints everything the manifest holds, one section after another, each
/// headed by a line `@@name`; it ends with `@@end`, so output cut short is recognised. It needs
/// no root: every file and command it reads is readable by any user.
pub const SCRIPT: &str = r#"echo @@os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo @@kernel; uname -r
echo @@boot; ls -1 /boot 2>/dev/null
if command -v dpkg-query >/dev/null 2>&1; then
  echo @@dpkg; dpkg-query -W -f='${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n' 2>/dev/null
elif command -v rpm >/dev/null 2>&1; then
  echo @@rpm; rpm -qa --qf '%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n' 2>/dev/null
fi
echo @@units; systemctl list-unit-files --state=enabled --no-legend --no-pager 2>/dev/null
echo @@ports; grep -H '' /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null
echo @@passwd; getent passwd 2>/dev/null || cat /etc/passwd
echo @@end
"#;

/// Reads the output of [`SCRIPT`]. Lines it does not understand are left out; output without
/// the kernel or the closing `@@end` is an error that says so.
pub fn parse(stdout: &str) -> std::result::Result<Manifest, String> {
    let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in stdout.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match line.strip_prefix("@@") {
            Some(name)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
            {
                sections.push((name, Vec::new()))
            }
            _ => {
                if let Some((_, lines)) = sections.last_mut() {
                    lines.push(line);
                }
            }
        }
    }
    let section = |name: &str| {
        sections
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| l.as_slice())
    };
    if section("end").is_none() {
        return Err(
            "the manifest script's output ends early (no `@@end` line): the builder stopped \
             answering or the output was cut"
                .into(),
        );
    }
    let running = section("kernel")
        .and_then(|l| l.iter().map(|s| s.trim()).find(|s| !s.is_empty()))
        .ok_or("the manifest script printed no kernel version (`uname -r`)")?
        .to_string();

    let mut os = Os::default();
    for line in section("os-release").unwrap_or_default() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches('"')
            .trim_matches('\'')
            .to_string();
        match key.trim() {
            "ID" => os.id = value,
            "VERSION_ID" => os.version_id = value,
            "PRETTY_NAME" => os.pretty_name = value,
            _ => {}
        }
    }

    let mut installed: Vec<String> = section("boot")
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.trim().strip_prefix("vmlinuz-"))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    installed.sort_by(|a, b| version::compare_kernels(a, b));
    installed.dedup();
    let boots = installed.last().cloned().unwrap_or_else(|| running.clone());

    let (package_manager, lines) = match (section("dpkg"), section("rpm")) {
        (Some(l), _) => ("dpkg", l),
        (None, Some(l)) => ("rpm", l),
        (None, None) => ("", &[][..]),
    };
    let mut packages: Vec<Package> = lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (name, version, arch) = match (package_manager, f.as_slice()) {
                // Removed packages whose configuration files remain are not installed.
                ("dpkg", [status, name, version, arch]) if status.trim() == "installed" => {
                    (name, version, arch)
                }
                ("rpm", [name, version, arch]) => (name, version, arch),
                _ => return None,
            };
            let (name, version, arch) = (name.trim(), version.trim(), arch.trim());
            (!name.is_empty() && !version.is_empty()).then(|| Package {
                name: name.to_string(),
                version: version.to_string(),
                arch: arch.to_string(),
            })
        })
        .collect();
    packages.sort();
    packages.dedup();

    let mut units: Vec<String> = section("units")
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|u| u.contains('.'))
        .map(str::to_string)
        .collect();
    units.sort();
    units.dedup();

    let ports_text = section("ports").unwrap_or_default().join("\n");
    let mut ports: Vec<Port> = crate::suites::resources::port::listeners(&ports_text)
        .into_iter()
        .map(|l| Port {
            protocol: l.table.trim_end_matches('6').to_string(),
            address: l.ip,
            port: l.port,
        })
        .collect();
    ports.sort();
    ports.dedup();

    let mut users: Vec<User> = section("passwd")
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || f[0].is_empty() {
                return None;
            }
            Some(User {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect();
    users.sort();
    users.dedup_by(|a, b| a.name == b.name);

    Ok(Manifest {
        format_version: FORMAT_VERSION,
        image: String::new(),
        captured: String::new(),
        captured_on: String::new(),
        os,
        kernel: Kernel {
            running,
            installed,
            boots,
        },
        package_manager: package_manager.to_string(),
        packages,
        units,
        ports,
        users,
    })
}

/// Runs [`SCRIPT`] through `transport` and reads its output.
pub fn capture(transport: &dyn crate::transport::Transport, captured_on: &str) -> Result<Manifest> {
    let out = transport.run(SCRIPT, std::time::Duration::from_secs(120))?;
    let mut manifest = parse(&out.stdout).map_err(|e| {
        Error::Infra(format!(
            "reading the image manifest on {}: {e} (exit code {}; stderr: {})",
            transport.endpoint(),
            out.exit_code,
            crate::report::bounded(out.stderr.trim(), 500)
        ))
    })?;
    manifest.captured = crate::clock::now_rfc3339();
    manifest.captured_on = captured_on.to_string();
    Ok(manifest)
}

/// The results directory of a pipeline: the directory of its JUnit file.
pub fn results_dir(loaded: &crate::config::LoadedPipeline) -> PathBuf {
    let junit = loaded.resolve(&loaded.pipeline.verify.junit);
    junit
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| loaded.dir.clone())
}

fn manifest_json(manifest: &Manifest) -> String {
    serde_json::to_string_pretty(manifest).expect("a manifest serializes") + "\n"
}

fn digest(text: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Where the manifest of `image` is kept when the provider keeps no files with its images.
fn results_copy(results: &Path, image: &str) -> PathBuf {
    results.join("manifests").join(format!("{image}.json"))
}

/// Keeps `manifest` with `image` (see the module's documentation for where).
pub fn save(
    provider: &dyn Provider,
    image: &Image,
    manifest: &Manifest,
    results: &Path,
) -> Result<()> {
    let mut manifest = manifest.clone();
    manifest.image = image.id.clone();
    let text = manifest_json(&manifest);
    match provider.image_files(&image.id) {
        Some(dir) => {
            std::fs::create_dir_all(&dir).at("creating", &dir)?;
            write(&dir.join(MANIFEST_FILE), &text)
        }
        None => {
            let path = results_copy(results, &image.id);
            write(&path, &text)?;
            provider.tag_image(
                &image.id,
                &Tags::from([(MANIFEST_TAG.to_string(), digest(&text))]),
            )
        }
    }
}

/// Writes the newest image's manifest and SBOM beside the JUnit file `junit`; returns their
/// paths.
pub fn export(manifest: &Manifest, image: &Image, junit: &Path) -> Result<(PathBuf, PathBuf)> {
    let mut manifest = manifest.clone();
    manifest.image = image.id.clone();
    let path = junit.with_extension("manifest.json");
    write(&path, &manifest_json(&manifest))?;
    let sbom_path = junit.with_extension("cdx.json");
    write(
        &sbom_path,
        &sbom::render(&manifest, image).map_err(Error::Infra)?,
    )?;
    Ok((path, sbom_path))
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at("creating", dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).at("writing", &tmp)?;
    std::fs::rename(&tmp, path).at("writing", path)
}

/// The manifest of `image`, or why there is none (in words, for a report).
pub fn load(
    provider: &dyn Provider,
    image: &Image,
    results: &Path,
) -> Result<std::result::Result<Manifest, String>> {
    let (path, expected) = match provider.image_files(&image.id) {
        Some(dir) => (dir.join(MANIFEST_FILE), None),
        None => {
            // A regional copy made by promotion holds what its source holds, and carries the
            // source's tags, this one among them.
            let own = results_copy(results, &image.id);
            let path = match image.tags.get(crate::cloud::COPIED_FROM_TAG) {
                Some(source) if !own.exists() => results_copy(results, source),
                _ => own,
            };
            (path, Some(image.tags.get(MANIFEST_TAG)))
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(match expected {
                Some(Some(tag)) => format!(
                    "image {} has a manifest ({MANIFEST_TAG}={tag}), but it is not at {}: \
                     keep the results directory of the run that baked it (its tag \
                     bakery:run-id names the run), or restore that file",
                    image.id,
                    path.display()
                ),
                _ => format!(
                    "image {} has no manifest: it was not baked by a Bakery that records one",
                    image.id
                ),
            }))
        }
        Err(e) => return Err(Error::io("reading", &path, e)),
    };
    if let Some(Some(tag)) = expected {
        if digest(&text) != *tag {
            return Ok(Err(format!(
                "{} is not the manifest image {} was tagged with ({MANIFEST_TAG}={tag}): the \
                 file was changed or belongs to another image",
                path.display(),
                image.id
            )));
        }
    }
    serde_json::from_str(&text)
        .map(Ok)
        .map_err(|e| Error::Infra(crate::cloud::local::store::json_error(&path, &e)))
}

/// Compares `image` with the image `pointer` names now; the comparison says why when there
/// is nothing to compare (no image named yet, the same image, a manifest missing).
pub fn compare_with_pointer(
    provider: &dyn Provider,
    image: &Image,
    pointer: &str,
    results: &Path,
) -> Result<diff::Comparison> {
    let mut comparison = diff::Comparison {
        pointer: pointer.to_string(),
        against: None,
        diff: None,
        note: None,
    };
    let Some(current) = provider.pointer(pointer)? else {
        comparison.note = Some(format!(
            "the pointer {pointer} names no image yet: there is nothing to compare with"
        ));
        return Ok(comparison);
    };
    comparison.against = Some(current.clone());
    let old = provider.image(&current)?;
    let manifests = (
        load(provider, &old, results)?,
        load(provider, image, results)?,
    );
    match manifests {
        (Ok(old), Ok(new)) => comparison.diff = Some(diff::diff(&old, &new)),
        (Err(why), _) | (_, Err(why)) => comparison.note = Some(why),
    }
    Ok(comparison)
}

/// Compares two images (`bakery diff OLD NEW`).
pub fn compare(
    provider: &dyn Provider,
    old: &str,
    new: &str,
    results: &Path,
) -> Result<diff::Diff> {
    let read = |id: &str| -> Result<Manifest> {
        let image = provider.image(id)?;
        load(provider, &image, results)?.map_err(Error::Config)
    };
    Ok(diff::diff(&read(old)?, &read(new)?))
}

#[cfg(test)]
mod tests;
