//! Interrupts and runner faults, with `bakery run` of the AWS example against moto (through the
//! test proxy of `aws_common`): SIGINT and SIGTERM at every stage, SIGKILL followed by
//! `bakery cleanup`, a release that outlasts the runner's 10 s, a full disk under the data
//! directory, an unwritable JUnit path, the endpoint going away, an endpoint that lacks a call
//! and one that answers with a web page. After each, the endpoint is listed: nothing the run
//! created may be left but its image, tagged for what it is.
//!
//! The run announces each stage it enters (`BAKERY_ANNOUNCE_STAGES`), and the test acts the
//! moment the line arrives, so each interrupt lands in the stage it names. The same lines carry
//! the run's own clock, from which the time between the signal and the start of the cleanup is
//! read.
#![cfg(feature = "aws")]

mod aws_common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_common::{
    assert_only_images_left, bakery, example_copy, moto, reset_moto, serial, status_of, Endpoint,
    Response, Server,
};

const EXAMPLE: &str = "examples/aws/bakery.yml";

/// How a run ended, and everything it printed on stderr.
struct Ended {
    status: ExitStatus,
    stderr: Vec<String>,
}

impl Ended {
    /// The run's own clock (ms) when it announced `what`.
    fn stamp(&self, what: &str) -> Option<u128> {
        let prefix = format!("bakery-stage: {what} ");
        self.stderr
            .iter()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
    }

    fn text(&self) -> String {
        self.stderr.join("\n")
    }

    /// The run's `error:` line.
    fn error(&self) -> String {
        self.stderr
            .iter()
            .find(|l| l.starts_with("error: "))
            .cloned()
            .unwrap_or_else(|| panic!("no error line:\n{}", self.text()))
    }
}

/// Runs `bakery run -f file` with its stages announced, and calls `act` with its pid the moment
/// it announces `stage`. With `runner`, after `act` the runner's cancel follows: SIGTERM 7.5 s
/// later and SIGKILL 2.5 s after that, if the run is still going.
fn run_acting_at(
    e: &Endpoint,
    data: &Path,
    file: &Path,
    stage: &str,
    runner: bool,
    act: impl FnOnce(i32),
) -> Ended {
    let mut child = bakery(e, data)
        .args(["run", "-f"])
        .arg(file)
        .env(bakery::progress::ANNOUNCE_VAR, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let mut act = Some(act);
    let wanted = format!("bakery-stage: {stage} ");
    let mut stderr = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        eprintln!("{line}");
        if line.starts_with(&wanted) {
            if let Some(act) = act.take() {
                act(pid);
                if runner {
                    let done = done.clone();
                    std::thread::spawn(move || {
                        for (wait, sig) in [(7500, libc::SIGTERM), (2500, libc::SIGKILL)] {
                            std::thread::sleep(Duration::from_millis(wait));
                            if done.load(Ordering::SeqCst) {
                                return;
                            }
                            // SAFETY: signalling our own child, not yet reaped (done is unset).
                            unsafe { libc::kill(pid, sig) };
                        }
                    });
                }
            }
        }
        stderr.push(line);
    }
    let status = child.wait().unwrap();
    done.store(true, Ordering::SeqCst);
    assert!(act.is_none(), "the run never announced {stage}");
    Ended { status, stderr }
}

fn signal(sig: i32) -> impl FnOnce(i32) {
    move |pid| {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, sig) };
    }
}

fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "SIGKILL",
    }
}

/// The run's cleanup began within 1 s of the signal, by its own clock.
fn assert_cleanup_started_within_1s(r: &Ended, sig: i32, context: &str) {
    let got = r
        .stamp(&format!("signal-{}", name(sig)))
        .unwrap_or_else(|| panic!("{context}: no signal line:\n{}", r.text()));
    let cleanup = r
        .stamp("cleanup")
        .unwrap_or_else(|| panic!("{context}: no cleanup line:\n{}", r.text()));
    assert!(
        cleanup >= got && cleanup - got <= 1000,
        "{context}: cleanup started {} ms after the signal",
        cleanup as i128 - got as i128
    );
}

/// The ledgers left in the data directory, parsed.
fn ledgers(data: &Path) -> Vec<bakery::ledger::LedgerFile> {
    std::fs::read_dir(data.join("runs"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let text = std::fs::read_to_string(e.path()).unwrap();
                    serde_json::from_str(&text)
                        .unwrap_or_else(|err| panic!("{}: {err}: {text}", e.path().display()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The unreleased entries of the one ledger left, as `kind` names.
fn pending_kinds(data: &Path) -> Vec<String> {
    let ledgers = ledgers(data);
    assert_eq!(ledgers.len(), 1, "one ledger left");
    ledgers[0]
        .entries
        .iter()
        .filter(|e| !e.released)
        .map(|e| match &e.resource {
            bakery::ledger::Resource::Cloud { kind, .. } => kind.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn cleanup(e: &Endpoint, data: &Path) {
    let out = bakery(e, data).arg("cleanup").output().unwrap();
    aws_common::show(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "bakery cleanup finishes the job"
    );
}

/// The stages of the AWS example, in order ("source" stands for bootstrap: the base image).
const STAGES: [&str; 9] = [
    "source",
    "builder-boot",
    "provisioner-0",
    "provisioner-1",
    "provisioner-2",
    "capture",
    "probe-boot",
    "suites",
    "promote-copies",
];

/// A regional copy made by promotion (moto drops the tags a copy is made with, so it is known
/// by the description Bakery gives it).
fn is_copy(e: &Endpoint, image: &str) -> bool {
    let xml = e.ec2(&format!("Action=DescribeImages&ImageId.1={image}"));
    e.image_tags(image).contains_key("bakery:copied-from")
        || aws_common::xml_values(&xml, "description")
            .iter()
            .any(|d| d.starts_with("Copy of "))
}

/// The status an image left by a run stopped at `stage` must carry: it failed to be verified
/// (rejected), or it passed and its promotion was cut short (verified).
fn status_after(stage: &str) -> &'static str {
    if stage == "promote-copies" {
        "verified"
    } else {
        "rejected"
    }
}

#[test]
fn sigint_and_sigterm_at_every_stage_release_everything_and_cleanup_starts_within_1s() {
    let _g = serial();
    let file = aws_common::repo().join(EXAMPLE);
    for stage in STAGES {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let context = format!("{} at {stage}", name(sig));
            eprintln!("=== {context}");
            let e = Endpoint::start();
            let data = tempfile::tempdir().unwrap();
            let r = run_acting_at(&e, data.path(), &file, stage, false, signal(sig));
            assert_eq!(r.status.code(), Some(128 + sig), "{context}");
            assert_cleanup_started_within_1s(&r, sig, &context);
            for image in assert_only_images_left(&e, data.path()) {
                if is_copy(&e, &image) {
                    assert_ne!(status_of(&e, &image), "promoted", "{context}: copy {image}");
                } else {
                    assert_eq!(status_of(&e, &image), status_after(stage), "{context}");
                }
            }
        }
    }
}

#[test]
fn after_sigkill_at_a_stage_bakery_cleanup_leaves_only_the_image_tagged_as_it_was() {
    let _g = serial();
    let file = aws_common::repo().join(EXAMPLE);
    for (stage, status) in [
        ("provisioner-1", None),
        ("probe-boot", Some("baked")),
        ("suites", Some("baked")),
        ("promote-copies", Some("verified")),
    ] {
        eprintln!("=== SIGKILL at {stage}");
        let e = Endpoint::start();
        let data = tempfile::tempdir().unwrap();
        let r = run_acting_at(&e, data.path(), &file, stage, false, signal(libc::SIGKILL));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{stage}");
        assert_eq!(ledgers(data.path()).len(), 1, "{stage}: the ledger stays");
        cleanup(&e, data.path());
        let images = assert_only_images_left(&e, data.path());
        let own: Vec<_> = images.iter().filter(|i| !is_copy(&e, i)).collect();
        match status {
            None => assert!(own.is_empty(), "{stage}: no image yet: {images:?}"),
            Some(s) => {
                assert_eq!(own.len(), 1, "{stage}: {images:?}");
                assert_eq!(status_of(&e, own[0]), s, "{stage}");
            }
        }
    }
}

#[test]
fn a_security_group_still_in_use_after_the_runners_window_is_left_to_the_post_step() {
    let _g = serial();
    let file = aws_common::repo().join(EXAMPLE);
    // AWS refuses to delete a security group while the interface of its terminated instance
    // lingers. Briefly: the run waits and releases it itself. Past the runner's window: the run
    // stops waiting before the runner kills it, and leaves the group on its ledger.
    for busy in [3, 30] {
        eprintln!("=== security group busy for {busy}s after SIGINT");
        let e = Endpoint::start();
        let data = tempfile::tempdir().unwrap();
        let faults = e.faults.clone();
        // At image capture the builder, its group and its key pair exist.
        let r = run_acting_at(&e, data.path(), &file, "capture", true, move |pid| {
            faults.busy_for("ec2:DeleteSecurityGroup", Duration::from_secs(busy));
            signal(libc::SIGINT)(pid);
        });
        assert_eq!(
            r.status.code(),
            Some(128 + libc::SIGINT),
            "the run exits by itself, before the runner's SIGTERM or SIGKILL:\n{}",
            r.text()
        );
        assert_cleanup_started_within_1s(&r, libc::SIGINT, "busy");
        assert!(r.stamp("signal-SIGTERM").is_none());
        if busy < 8 {
            assert_only_images_left(&e, data.path());
            continue;
        }
        assert!(
            r.text()
                .contains("left on the run ledger for `bakery cleanup`"),
            "{}",
            r.text()
        );
        assert_eq!(pending_kinds(data.path()), vec!["security-group"]);
        assert!(e
            .leftovers()
            .iter()
            .any(|l| l.starts_with("security-group")));
        // The action's post step, once the group is free.
        e.faults.busy_for("ec2:DeleteSecurityGroup", Duration::ZERO);
        let out = bakery(&e, data.path())
            .arg("action")
            .env("STATE_bakery_post", "cleanup")
            .env("INPUT_MODE", "run")
            .output()
            .unwrap();
        aws_common::show(&out);
        assert_eq!(out.status.code(), Some(0));
        for image in assert_only_images_left(&e, data.path()) {
            assert_eq!(status_of(&e, &image), "rejected");
        }
    }
}

/// `bakery run` of the example with every AWS call sent to `url`; it must end with exit 3.
/// Returns its stderr and the `error: ` line in it.
fn run_against(e: &Endpoint, data: &Path, url: &str) -> (String, String) {
    let out = bakery(e, data)
        .env("BAKERY_AWS_ENDPOINT_URL", url)
        .args(["run", "-f", EXAMPLE])
        .output()
        .unwrap();
    aws_common::show(&out);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap()
        .to_string();
    (stderr, error)
}

#[test]
fn a_plain_moto_server_is_named_as_lacking_the_call_in_one_sentence() {
    let _g = serial();
    let e = Endpoint::start();
    let data = tempfile::tempdir().unwrap();
    // Straight to moto, without the proxy's Run Command stand-in.
    let (stderr, error) = run_against(&e, data.path(), &format!("http://{}", moto()));
    assert_eq!(
        error,
        "error: the AWS endpoint does not implement `ssm:DescribeInstanceInformation` (it answered HTTP 500 without an AWS error); use an endpoint that does, such as AWS itself"
    );
    assert!(!stderr.contains("<!doctype"), "no raw response: {stderr}");
    assert!(!stderr.contains("last console lines"), "{stderr}");
    assert_eq!(e.leftovers(), Vec::<String>::new());
    assert!(ledgers(data.path()).is_empty());
}

#[test]
fn an_endpoint_answering_html_is_named_in_one_sentence_and_nothing_is_created() {
    let _g = serial();
    reset_moto();
    let portal = Server::start(
        None,
        Arc::new(|_| {
            Some(Response {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
                body: b"<!DOCTYPE html><html><body>Sign in to continue</body></html>".to_vec(),
            })
        }),
        Arc::new(|_, _| {}),
    );
    let data = tempfile::tempdir().unwrap();
    let e = Endpoint::start();
    let (stderr, error) = run_against(&e, data.path(), &portal.url());
    assert!(
        error.contains("the endpoint answered HTTP 200 with a web page, not an AWS API response"),
        "{error}"
    );
    assert!(!stderr.contains("Sign in"), "no raw page: {stderr}");
    assert!(ledgers(data.path()).is_empty());
}

#[test]
fn the_endpoint_going_away_mid_run_leaves_the_ledger_for_bakery_cleanup() {
    let _g = serial();
    let file = aws_common::repo().join(EXAMPLE);
    let e = Endpoint::start();
    let data = tempfile::tempdir().unwrap();
    let faults = e.faults.clone();
    let r = run_acting_at(&e, data.path(), &file, "capture", false, move |_| {
        faults.set_down(true)
    });
    assert_eq!(r.status.code(), Some(3), "{}", r.text());
    let error = r.error();
    assert!(
        error.contains("the endpoint could not be reached"),
        "{error}"
    );
    // The builder, its security group and its key pair are still there, and on the ledger.
    let mut pending = pending_kinds(data.path());
    pending.sort();
    assert_eq!(pending, vec!["instance", "key-pair", "security-group"]);
    e.faults.set_down(false);
    cleanup(&e, data.path());
    assert_eq!(e.leftovers(), Vec::<String>::new());
    assert!(ledgers(data.path()).is_empty());
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs (the test needs to run as root)");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_under_the_data_directory_stops_the_run_with_its_ledger_intact() {
    let _g = serial();
    let file = aws_common::repo().join(EXAMPLE);
    let e = Endpoint::start();
    let disk = SmallDisk::mount("2m");
    let data = disk.path().to_path_buf();
    let r = run_acting_at(&e, &data, &file, "capture", false, |_| disk.fill());
    assert_eq!(r.status.code(), Some(3), "{}", r.text());
    let error = r.error();
    assert!(
        error.contains("No space left on device") && error.contains("runs/"),
        "{error}"
    );
    // The ledger is as last written (it parses), and no half-written copy lies beside it.
    assert!(!pending_kinds(&data).is_empty());
    let files: Vec<_> = std::fs::read_dir(data.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::remove_file(data.join("filler")).unwrap();
    cleanup(&e, &data);
    assert!(ledgers(&data).is_empty());
    assert_eq!(e.leftovers(), Vec::<String>::new());
}

#[test]
fn an_unwritable_junit_path_stops_the_run_before_anything_is_created() {
    let _g = serial();
    let e = Endpoint::start();
    let data = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(aws_common::repo().join(EXAMPLE))
        .unwrap()
        .replace(
            "junit: bakery-results/junit.xml",
            "junit: motd/junit.xml  # motd is a file",
        );
    let file = example_copy(".test-junit-", &text);
    let out = bakery(&e, data.path())
        .args(["run", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    aws_common::show(&out);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        error.contains("verify.junit: the report `")
            && error.contains("motd/junit.xml` cannot be written"),
        "{error}"
    );
    assert_eq!(e.server.actions(), Vec::<String>::new(), "no call was made");
    assert!(ledgers(data.path()).is_empty());
}

#[test]
fn sigint_and_sigterm_during_a_fault_on_the_probe_release_it_and_cleanup_starts_within_1s() {
    let _g = serial();
    // A reboot through EC2, whose recovery (a new boot id) never comes in the stand-in's
    // chroot: the run is inside the fault when the signal arrives.
    let suite = tempfile::Builder::new()
        .prefix(".test-fault-")
        .suffix(".yml")
        .tempfile_in(aws_common::repo().join("examples/aws"))
        .unwrap()
        .into_temp_path();
    std::fs::write(
        &suite,
        "name: interrupted-fault\nexperiments:\n  - id: reboot\n    steady-state:\n      - {id: kernel, command: {run: uname -s, stdout: Linux}}\n    fault: {reboot: {}}\n    recover-within: 120s\n",
    )
    .unwrap();
    let suite_name = suite.file_name().unwrap().to_str().unwrap().to_string();
    let text = std::fs::read_to_string(aws_common::repo().join(EXAMPLE))
        .unwrap()
        .replace(
            "    - baseline.yml\n",
            &format!("    - baseline.yml\n    - {suite_name}\n"),
        );
    let file = example_copy(".test-fault-run-", &text);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let context = format!("{} during a fault", name(sig));
        eprintln!("=== {context}");
        let e = Endpoint::start();
        let data = tempfile::tempdir().unwrap();
        let r = run_acting_at(&e, data.path(), &file, "fault", false, signal(sig));
        assert_eq!(r.status.code(), Some(128 + sig), "{context}");
        assert_cleanup_started_within_1s(&r, sig, &context);
        assert!(
            e.server
                .actions()
                .iter()
                .any(|a| a == "ec2:RebootInstances"),
            "the fault was injected"
        );
        for image in assert_only_images_left(&e, data.path()) {
            assert_eq!(status_of(&e, &image), "rejected", "{context}");
        }
    }
}
