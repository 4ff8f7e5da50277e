//! The `ansible` provisioner and reboots during provisioning, on real QEMU guests with the
//! pinned ansible-core of scripts/ansible.sh: the Ansible example bakes, passes the shell
//! example's suites and is promoted, with no key file on disk and host key checking on
//! throughout; a bake that reboots three ways carries on after each reboot and is then
//! stopped by a failing task, named in the error.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// What the watcher saw of the Ansible side of a run.
#[derive(Default, Debug)]
struct Seen {
    /// `argv | environment` of every process started for Ansible.
    processes: BTreeSet<String>,
    /// `path: contents` of every file in the run's temporary directory.
    files: BTreeSet<String>,
}

/// Watches, until `stop`, the processes whose command line names `tmp` and the files under
/// it (the bakery process gets `TMPDIR=tmp`, so its Ansible directory is there).
fn watch(tmp: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        let needle = tmp.display().to_string();
        while !stop.load(Ordering::SeqCst) {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                if entry.file_name().to_string_lossy().parse::<u32>().is_err() {
                    continue;
                }
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if !cmdline.contains(&needle) || cmdline.contains("bakery run") {
                    continue;
                }
                let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
                let environ = String::from_utf8_lossy(&environ).replace('\0', " ");
                seen.processes.insert(format!("{cmdline} | {environ}"));
            }
            walk(&tmp, &mut seen.files);
            std::thread::sleep(Duration::from_millis(100));
        }
        seen
    })
}

fn walk(dir: &Path, files: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, files),
            Ok(t) if t.is_file() => {
                let text = std::fs::read(&p).unwrap_or_default();
                files.insert(format!(
                    "{}: {}",
                    p.display(),
                    String::from_utf8_lossy(&text)
                ));
            }
            _ => {}
        }
    }
}

/// Ansible never had a key file, never ran with host key checking off, and nothing of it is
/// left running.
fn assert_key_safe(seen: &Seen, tmp: &Path) {
    let playbook = seen
        .processes
        .iter()
        .find(|p| p.contains("ansible-playbook") && !p.starts_with("ssh"))
        .unwrap_or_else(|| panic!("ansible-playbook was seen running: {seen:#?}"));
    assert!(
        playbook.contains("ANSIBLE_HOST_KEY_CHECKING=True"),
        "{playbook}"
    );
    assert!(playbook.contains("SSH_AUTH_SOCK="), "{playbook}");
    assert!(
        seen.processes
            .iter()
            .any(|p| p.starts_with("ssh-agent -D -a ")),
        "the run's ssh-agent was seen: {seen:#?}"
    );
    let ssh: Vec<&String> = seen
        .processes
        .iter()
        .filter(|p| p.starts_with("ssh ") && p.contains("ControlPath"))
        .collect();
    assert!(!ssh.is_empty(), "Ansible's ssh was seen: {seen:#?}");
    for p in &ssh {
        assert!(p.contains("StrictHostKeyChecking=yes"), "{p}");
        assert!(p.contains("known_hosts"), "{p}");
    }
    for p in &seen.processes {
        let lower = p.to_lowercase();
        for bad in [
            "stricthostkeychecking=no",
            "stricthostkeychecking=accept-new",
            "host_key_checking=false",
            "--private-key",
            "private_key_file",
            "userknownhostsfile=/dev/null",
        ] {
            assert!(!lower.contains(bad), "`{bad}` in {p}");
        }
        // No identity file but `none`.
        for part in p.split_whitespace() {
            if let Some(f) = part.strip_prefix("IdentityFile=") {
                assert_eq!(f, "none", "{p}");
            }
            if part == "-i" && p.starts_with("ssh ") {
                panic!("ssh was given a key file: {p}");
            }
        }
    }
    assert!(
        !seen.files.is_empty(),
        "the watcher saw the Ansible directory"
    );
    assert!(
        seen.files
            .iter()
            .any(|f| f.contains("known_hosts: [127.0.0.1]:") && f.contains("ssh-ed25519 ")),
        "known_hosts names the forwarded port: {:#?}",
        seen.files
    );
    for f in &seen.files {
        assert!(!f.contains("PRIVATE KEY"), "a private key on disk: {f}");
    }
    // The agent and Ansible's connections died with the run, and their directory went.
    let left = processes_named(tmp);
    assert!(left.is_empty(), "left running: {left:?}");
    let dirs: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(dirs.is_empty(), "left in TMPDIR: {dirs:?}");
}

fn processes_named(tmp: &Path) -> Vec<String> {
    let needle = tmp.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            if stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            {
                return None;
            }
            let c = std::fs::read(e.path().join("cmdline")).ok()?;
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            c.contains(&needle).then_some(c)
        })
        .collect()
}

/// Runs `bakery run -f PIPELINE` with ansible on PATH and `TMPDIR` in the data directory,
/// watching the Ansible side meanwhile.
fn run_watched(data: &Path, pipeline: &Path) -> (std::process::Output, Seen, PathBuf) {
    // Short, as the temporary directories of real machines are: SSH's control sockets live
    // there, and a longer one would make Bakery fall back to /tmp, out of the watcher's sight.
    let name = data.file_name().unwrap().to_string_lossy();
    let tmp = PathBuf::from(format!("/tmp/bk-{}", &name[name.len() - 3..]));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(tmp.clone(), stop.clone());
    let out = run(bakery(data)
        .env("PATH", ansible_path())
        .env("TMPDIR", &tmp)
        .arg("run")
        .arg("-f")
        .arg(pipeline));
    stop.store(true, Ordering::SeqCst);
    (out, watcher.join().unwrap(), tmp)
}

#[test]
fn ansible_example_bakes_the_web_server_and_passes_the_same_suites() {
    let _vm = vm_lock();
    let data = data_dir("ansible-example");
    let junit = repo().join("examples/local/bakery-results/ansible-junit.xml");
    let _ = std::fs::remove_file(&junit);

    // The example as shipped, less Debian's security updates (`security_updates: false`, the
    // playbook's own switch), for the reason the shell example's test leaves them out
    // (tests/local_pipeline.rs): most of a quarter of an hour of emulated upgrading.
    let shipped = std::fs::read_to_string(repo().join("examples/local/ansible.yml")).unwrap();
    let anchor = "        groups: [web]\n";
    assert!(shipped.contains(anchor), "the example's ansible step");
    let pipeline = example_variant(
        ".test-ansible-",
        &shipped.replace(
            anchor,
            &format!("{anchor}        extra_vars:\n          security_updates: false\n"),
        ),
    );
    let (out, seen, tmp) = run_watched(&data, &pipeline);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the Ansible example passes and is promoted; the run's verdicts:\n{}",
        verdicts(&stderr)
    );
    let image_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(image_id.starts_with("ami-"), "{image_id}");
    // The play streamed, with the provisioners' prefix.
    assert!(stderr.contains("| TASK [Install nginx]"), "{stderr}");
    assert!(stderr.contains("| builder "), "the play recap: {stderr}");

    // The same suites as the shell example, every check and experiment passed.
    let text = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let shell = std::fs::read_to_string(repo().join("examples/local/bakery.yml")).unwrap();
    let ansible = std::fs::read_to_string(repo().join("examples/local/ansible.yml")).unwrap();
    let suites = |t: &str| t[t.find("verify:").unwrap()..t.find("  junit:").unwrap()].to_string();
    assert_eq!(
        suites(&shell),
        suites(&ansible),
        "the examples verify alike"
    );
    assert!(cases.len() >= 10, "{} testcases", cases.len());
    for c in &cases {
        assert!(
            !c.children()
                .any(|f| f.has_tag_name("failure") || f.has_tag_name("error")),
            "{:?} failed",
            c.attribute("name")
        );
    }
    for (suite, name) in [
        ("web", "index-page-from-outside"),
        ("web-chaos", "nginx-sigkill"),
        ("web-reboot", "nginx-after-reboot"),
    ] {
        assert!(
            cases.iter().any(|c| c.attribute("classname") == Some(suite)
                && c.attribute("name").unwrap_or("").starts_with(name)),
            "{suite}/{name} ran"
        );
    }
    assert_eq!(
        pointer(&data, "/golden/web-ansible/latest").as_deref(),
        Some(image_id.as_str())
    );
    // The probe ran the kernel the image's manifest says it boots: `uname -r` there.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(junit.with_extension("json")).unwrap())
            .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("images").join(&image_id).join("manifest.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        check_output(&results, "web", "newest-kernel").as_deref(),
        manifest["kernel"]["boots"].as_str(),
        "uname -r on the probe against the manifest's kernel: {}",
        manifest["kernel"]
    );
    assert_key_safe(&seen, &tmp);
    assert_nothing_left(&data);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_bake_goes_on_after_reboots_and_stops_at_a_failing_task() {
    let _vm = vm_lock();
    let data = data_dir("ansible-reboots");
    let (out, seen, tmp) = run_watched(&data, &repo().join("tests/ansible/reboots.yml"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed task fails the bake");

    // The failing task, its host and its message name the failure.
    assert!(
        stderr.contains(
            "build.provisioners[5] (ansible: fail.yml): task `Refuse to finish the image` failed on builder (i-"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(": the image must not be baked"), "{stderr}");
    assert!(!stderr.contains("TASK [Never reached]"), "{stderr}");

    // Every reboot happened, and the bake went on after each: four boot ids recorded by the
    // steps, each different, and the last is the boot the failing play ran on.
    let mut boots: Vec<(String, String, String)> = stderr
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("BOOT /root/boot-")? + 5..];
            let mut w = rest.split_whitespace();
            let file = w.next()?.to_string();
            let id = w.next()?.to_string();
            w.next()?;
            let now = w.next()?.trim_end_matches(['"', ',']).to_string();
            Some((file, id, now))
        })
        .collect();
    boots.sort();
    boots.dedup();
    let ids: Vec<&str> = boots.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(
        boots.iter().map(|(f, _, _)| f.as_str()).collect::<Vec<_>>(),
        [
            "/root/boot-1",
            "/root/boot-2",
            "/root/boot-3",
            "/root/boot-4"
        ],
        "{stderr}"
    );
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "a new boot after each reboot: {ids:?}");
    assert_eq!(boots[3].1, boots[3].2, "the play ran on the last boot");
    // The playbook's login user and become, and the collection from the requirements file.
    assert!(
        stderr.contains("SHOUT LOGIN=DEPLOY TASKS=ROOT"),
        "logged in as deploy, tasks as root: {stderr}"
    );
    assert!(
        stderr.contains("bakery_test.local:1.0.0 was installed successfully"),
        "{stderr}"
    );

    // A failed bake leaves no image, no instance and nothing of Ansible's.
    let images = bakery(&data).args(["images", "--json"]).output().unwrap();
    let images: serde_json::Value = serde_json::from_slice(&images.stdout).unwrap();
    assert_eq!(
        images.as_array().unwrap().len(),
        1,
        "only the base image: {images}"
    );
    assert_key_safe(&seen, &tmp);
    assert_nothing_left(&data);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&tmp);
}
