use super::diff::{diff, Comparison};
use super::*;

/// The manifest script's output on a Debian 12 machine (packages and users cut to a few; a
/// machine booted without a kernel in /boot, so the running kernel is the one it boots).
const HOST: &str = include_str!("testdata/debian-12-host.txt");

fn package(name: &str, version: &str) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
    }
}

#[test]
fn reads_captured_output() {
    let m = parse(HOST).unwrap();
    assert_eq!(m.os.id, "debian");
    assert_eq!(m.os.version_id, "12");
    assert_eq!(m.os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(m.kernel.running, "6.18.44-fc-v669");
    assert!(m.kernel.installed.is_empty());
    assert_eq!(
        m.kernel.boots, "6.18.44-fc-v669",
        "no /boot kernel: the running one"
    );
    assert_eq!(m.package_manager, "dpkg");
    assert_eq!(m.packages.len(), 15);
    assert!(m.packages.contains(&package("libc6", "2.36-9+deb12u14")));
    assert!(m.packages.contains(&Package {
        name: "tzdata".into(),
        version: "2025b-0+deb12u2".into(),
        arch: "all".into()
    }));
    assert!(m.units.contains(&"systemd-timesyncd.service".to_string()));
    assert!(m.units.contains(&"apt-daily.timer".to_string()));
    assert_eq!(m.units.len(), 17);
    // Two listening TCP sockets; the established connections are not listed.
    assert_eq!(
        m.ports.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["tcp/0.0.0.0:2024", "tcp/127.0.0.1:54321"]
    );
    let root = m.users.iter().find(|u| u.name == "root").unwrap();
    assert_eq!((root.uid, root.shell.as_str()), (0, "/bin/bash"));
    assert_eq!(m.users.len(), 8);
}

#[test]
fn the_newest_installed_kernel_is_the_one_booted_and_removed_packages_are_left_out() {
    let text = "@@os-release\nID=debian\n@@kernel\n6.1.0-9-amd64\n@@boot\nconfig-6.1.0-9-amd64\n\
                vmlinuz-6.1.0-28-amd64\nvmlinuz-6.1.0-9-amd64\ninitrd.img-6.1.0-28-amd64\ngrub\n\
                @@dpkg\ninstalled\tnginx-light\t1.22.1-9\tamd64\n\
                config-files\tapache2\t2.4.62-1~deb12u2\tamd64\n\
                not-installed\tfoo\t\tamd64\n\
                @@units\nnginx.service enabled enabled\n@@end\n";
    let m = parse(text).unwrap();
    assert_eq!(m.kernel.installed, ["6.1.0-9-amd64", "6.1.0-28-amd64"]);
    assert_eq!(m.kernel.boots, "6.1.0-28-amd64");
    assert_eq!(m.kernel.running, "6.1.0-9-amd64");
    assert_eq!(m.packages, [package("nginx-light", "1.22.1-9")]);
    assert_eq!(m.units, ["nginx.service"]);
}

#[test]
fn rpm_output_is_read_too() {
    let text = "@@kernel\n5.14.0-503.el9.x86_64\n@@boot\nvmlinuz-5.14.0-427.el9.x86_64\n\
                vmlinuz-5.14.0-503.el9.x86_64\n@@rpm\nbash\t5.1.8-9.el9\tx86_64\n\
                kernel\t5.14.0-427.el9\tx86_64\nkernel\t5.14.0-503.el9\tx86_64\n\
                shadow-utils\t2:4.9-9.el9\tx86_64\n@@end\n";
    let m = parse(text).unwrap();
    assert_eq!(m.package_manager, "rpm");
    assert_eq!(m.packages.len(), 4, "both kernels are listed");
    assert_eq!(m.kernel.boots, "5.14.0-503.el9.x86_64");
}

#[test]
fn output_cut_short_is_an_error_that_says_so() {
    let cut = &HOST[..HOST.find("@@passwd").unwrap()];
    let e = parse(cut).unwrap_err();
    assert!(e.contains("ends early"), "{e}");
    let e = parse("@@kernel\n\n@@end\n").unwrap_err();
    assert!(e.contains("uname -r"), "{e}");
    assert!(parse("").is_err());
}

fn manifest(id: &str, packages: &[(&str, &str)], kernel: &str) -> Manifest {
    let mut m = parse(HOST).unwrap();
    m.image = id.into();
    m.packages = packages.iter().map(|(n, v)| package(n, v)).collect();
    m.kernel.boots = kernel.into();
    m
}

#[test]
fn diff_sorts_packages_by_debian_version_order() {
    let old = manifest(
        "ami-old",
        &[
            ("libc6", "2.36-9+deb12u9"),
            ("openssl", "3.0.19-1~deb12u2"),
            ("curl", "7.88.1-10+deb12u12"),
            ("vim", "2:9.0.1378-2"),
        ],
        "6.1.0-27-amd64",
    );
    let mut new = manifest(
        "ami-new",
        &[
            ("libc6", "2.36-9+deb12u10"),
            ("openssl", "3.0.19-1~deb12u2"),
            ("curl", "7.88.1-10+deb12u8"),
            ("nginx-light", "1.22.1-9+deb12u1"),
        ],
        "6.1.0-28-amd64",
    );
    new.units.push("nginx.service".into());
    new.ports.push(Port {
        protocol: "tcp".into(),
        address: "0.0.0.0".into(),
        port: 80,
    });
    new.users.retain(|u| u.name != "games");
    let d = diff(&old, &new);
    assert_eq!((d.from.as_str(), d.to.as_str()), ("ami-old", "ami-new"));
    let kernel = d.kernel.as_ref().unwrap();
    assert_eq!(
        (kernel.from.as_str(), kernel.to.as_str()),
        ("6.1.0-27-amd64", "6.1.0-28-amd64")
    );
    assert_eq!(d.added, [package("nginx-light", "1.22.1-9+deb12u1")]);
    assert_eq!(d.removed, [package("vim", "2:9.0.1378-2")]);
    // deb12u10 is newer than deb12u9 (a string comparison says otherwise).
    assert_eq!(d.upgraded.len(), 1);
    assert_eq!(d.upgraded[0].name, "libc6");
    assert_eq!(d.downgraded.len(), 1);
    assert_eq!(d.downgraded[0].name, "curl");
    assert_eq!(d.units_enabled, ["nginx.service"]);
    assert!(d.units_disabled.is_empty());
    assert_eq!(d.ports_opened[0].to_string(), "tcp/0.0.0.0:80");
    assert_eq!(d.users_removed, ["games"]);
    assert_eq!(
        d.headline(),
        "kernel 6.1.0-27-amd64 → 6.1.0-28-amd64; packages: 1 added, 1 removed, 1 upgraded, \
         1 downgraded; units: 1 enabled; ports: 1 opened; users: 1 removed"
    );
    let text = d.text(100);
    assert!(
        text.contains("  + nginx-light 1.22.1-9+deb12u1 (amd64)\n"),
        "{text}"
    );
    assert!(
        text.contains("  ↓ curl 7.88.1-10+deb12u12 → 7.88.1-10+deb12u8 (amd64)\n"),
        "{text}"
    );
    assert!(
        text.contains("  kernel: 6.1.0-27-amd64 → 6.1.0-28-amd64\n"),
        "{text}"
    );
    // Eight changes (the headline's counts, and the kernel): two shown, six left.
    assert_eq!(d.lines().len(), 8);
    let short = d.text(2);
    assert!(
        short.contains("… and 6 more (`bakery diff ami-old ami-new`"),
        "{short}"
    );

    let same = diff(&new, &new);
    assert!(same.is_empty());
    assert_eq!(same.headline(), "no changes");
}

#[test]
fn markdown_stays_within_its_limit_keeping_the_headline() {
    let many: Vec<(String, String)> = (0..3000)
        .map(|i| (format!("package-{i:04}"), "1.0-1".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let old = manifest("ami-old", &[], "6.1.0-27-amd64");
    let new = manifest("ami-new", &refs, "6.1.0-28-amd64");
    let d = diff(&old, &new);
    let md = d.markdown("/golden/web/latest", 8_000);
    assert!(md.len() <= 8_000, "{}", md.len());
    assert!(md.contains("packages: 3000 added"), "{md}");
    assert!(
        md.contains("| kernel | | 6.1.0-27-amd64 | 6.1.0-28-amd64 |"),
        "{md}"
    );
    assert!(md.contains("more changes: `bakery diff`"), "{md}");
    let row = md.lines().find(|l| l.contains("package-0000")).unwrap();
    assert_eq!(row, "| ➕ added | `package-0000` | | 1.0-1 |");

    let c = Comparison {
        pointer: "/golden/web/latest".into(),
        against: None,
        diff: None,
        note: Some("the pointer names no image yet".into()),
    };
    assert!(c.markdown(1000).contains("the pointer names no image yet"));
    assert!(c
        .text(10)
        .contains("none shown: the pointer names no image yet"));
}

#[test]
fn the_sbom_lists_every_package_with_its_package_url() {
    let mut m = parse(HOST).unwrap();
    m.captured = "2026-12-01T10:00:00Z".into();
    let image = Image {
        id: "ami-0123456789abcdef0".into(),
        name: "web-1".into(),
        parent: None,
        tags: Default::default(),
        state: "available".into(),
        created: String::new(),
        size_bytes: 0,
    };
    let v: serde_json::Value = serde_json::from_str(&sbom::render(&m, &image).unwrap()).unwrap();
    assert_eq!(v["bomFormat"], "CycloneDX");
    assert_eq!(v["specVersion"], "1.5");
    assert_eq!(v["metadata"]["component"]["name"], "web-1");
    assert_eq!(v["metadata"]["timestamp"], "2026-12-01T10:00:00Z");
    let components = v["components"].as_array().unwrap();
    assert_eq!(components.len(), 1 + 15, "the OS and each package");
    assert_eq!(components[0]["type"], "operating-system");
    let libc = components.iter().find(|c| c["name"] == "libc6").unwrap();
    assert_eq!(libc["version"], "2.36-9+deb12u14");
    assert_eq!(
        libc["purl"],
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12"
    );
}

#[test]
fn a_provider_without_image_files_keeps_the_manifest_in_the_results_by_digest() {
    let results = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let local = crate::cloud::local::LocalProvider::new(store.path());
    // The local provider keeps it with the image; an image it does not know has none.
    let image = Image {
        id: "ami-00000000000000001".into(),
        name: "x".into(),
        parent: None,
        tags: Default::default(),
        state: "available".into(),
        created: String::new(),
        size_bytes: 0,
    };
    let found = load(&local, &image, results.path()).unwrap();
    assert!(found.unwrap_err().contains("has no manifest"));

    let m = parse(HOST).unwrap();
    let text = manifest_json(&Manifest {
        image: image.id.clone(),
        ..m.clone()
    });
    let path = results_copy(results.path(), &image.id);
    write(&path, &text).unwrap();
    assert_eq!(
        digest("abc"),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // The digest in the tag must match the file.
    let mut tagged = image.clone();
    tagged.tags.insert(MANIFEST_TAG.into(), digest(&text));
    let aws_like = NoFiles;
    let read = load(&aws_like, &tagged, results.path()).unwrap().unwrap();
    assert_eq!(read.image, image.id);
    assert_eq!(read.packages, m.packages);
    tagged.tags.insert(MANIFEST_TAG.into(), digest("other"));
    let e = load(&aws_like, &tagged, results.path())
        .unwrap()
        .unwrap_err();
    assert!(e.contains("is not the manifest image"), "{e}");
    std::fs::remove_file(&path).unwrap();
    let e = load(&aws_like, &tagged, results.path())
        .unwrap()
        .unwrap_err();
    assert!(e.contains("keep the results directory"), "{e}");
}

/// A provider that keeps no files with its images (as AWS).
struct NoFiles;

impl crate::ledger::Release for NoFiles {
    fn release(&self, _r: &crate::ledger::Resource) -> Result<()> {
        Ok(())
    }
    fn provider_name(&self) -> &str {
        "test"
    }
}

impl Provider for NoFiles {
    fn resolve_source(
        &self,
        _: &crate::config::Source,
        _: &crate::ledger::Ledger,
    ) -> Result<Image> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn launch(
        &self,
        _: &crate::cloud::LaunchRequest,
        _: &crate::ledger::Ledger,
    ) -> Result<crate::cloud::Instance> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn connect(
        &self,
        _: &crate::cloud::Instance,
        _: &crate::transport::ssh::KeyPair,
        _: &crate::config::InstanceSettings,
    ) -> Result<Box<dyn crate::transport::Transport>> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn create_image(
        &self,
        _: &crate::cloud::Instance,
        _: &str,
        _: &Tags,
        _: &crate::ledger::Ledger,
    ) -> Result<Image> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn terminate(&self, _: &crate::cloud::Instance, _: &crate::ledger::Ledger) -> Result<()> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn console_tail(&self, _: &crate::cloud::Instance, _: usize) -> String {
        String::new()
    }
    fn image(&self, _: &str) -> Result<Image> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn images(&self) -> Result<Vec<Image>> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn tag_image(&self, _: &str, _: &Tags) -> Result<()> {
        Ok(())
    }
    fn delete_image(&self, _: &str) -> Result<()> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn pointer(&self, _: &str) -> Result<Option<String>> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn set_pointer(&self, _: &str, _: &str) -> Result<u64> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
    fn pointers(&self) -> Result<std::collections::BTreeMap<String, String>> {
        Err(crate::Error::Infra(
            "the manifest tests ask this provider only for image files".into(),
        ))
    }
}
