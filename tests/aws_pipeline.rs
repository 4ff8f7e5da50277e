//! `bakery` itself against moto, through the test proxy (see `aws_common`): the example reaches
//! a promoted image, the failing example leaves only a rejected one, every call that creates
//! something is made to fail in turn, and SIGTERM arrives between calls — and after each run
//! the endpoint is listed and nothing the run created may be left but its image.
//!
//! The probe's transport is SSM Run Command, answered by the proxy's stand-in: commands run in a
//! copy-on-write chroot of this machine (moto's instances run nothing). The gate's verdict comes
//! from what the example's provisioners really did there; everything else (instances, key
//! pairs, groups, images, snapshots, tags, the pointer parameter) is moto's own state.
#![cfg(feature = "aws")]

mod aws_common;

use std::path::PathBuf;

use aws_common::{
    assert_only_images_left, bakery, example_copy, repo, serial, show, status_of, Endpoint, Fault,
};

fn example(name: &str) -> PathBuf {
    repo().join("examples/aws").join(name)
}

/// A copy of the example next to it, with `edit` applied (relative paths keep working).
fn variant(name: &str, edit: impl Fn(String) -> String) -> tempfile::TempPath {
    let text = std::fs::read_to_string(example("bakery.yml")).unwrap();
    example_copy(&format!(".test-{name}-"), &edit(text))
}

/// The image copied from `source` in us-east-1 (the example re-encrypts the image there with
/// its own key before sharing it): the one the pointer names.
fn copy_of(e: &Endpoint, source: &str) -> String {
    let xml = e.ec2(&format!(
        "Action=DescribeImages&Owner.1=self&Filter.1.Name=tag:bakery:copied-from&Filter.1.Value.1={source}"
    ));
    let ids = aws_common::xml_values(&xml, "imageId");
    assert_eq!(ids.len(), 1, "one copy of {source}: {ids:?}");
    ids[0].clone()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_example_reaches_a_promoted_image_and_the_failing_one_only_a_rejected_image() {
    let _g = serial();
    let e = Endpoint::start();
    let data = tempfile::tempdir().unwrap();

    let out = bakery(&e, data.path())
        .args(["run", "-f", "examples/aws/bakery.yml"])
        .output()
        .unwrap();
    show(&out);
    assert_eq!(out.status.code(), Some(0));
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(image.starts_with("ami-"), "{image}");
    assert_eq!(status_of(&e, &image), "promoted");
    let copy = copy_of(&e, &image);
    assert_eq!(status_of(&e, &copy), "promoted");
    let pointer = e.ssm(
        "GetParameter",
        serde_json::json!({"Name": "/golden/al2023/latest"}),
    );
    assert_eq!(pointer["Parameter"]["Value"], copy.as_str());
    // The run leaves its image and the image's re-encrypted copy (the example's other
    // regions are covered by tests/aws_promote.rs).
    assert_eq!(
        sorted(assert_only_images_left(&e, data.path())),
        sorted(vec![image.clone(), copy.clone()])
    );
    // The probe really ran the checks over Run Command, and the builder got the provisioners.
    let commands = e.instances.commands.lock().unwrap().clone();
    let instances: std::collections::BTreeSet<&str> =
        commands.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(instances.len(), 2, "a builder and a probe");
    assert!(commands.iter().any(|(_, c)| c.contains("90-bakery.conf")));
    // The image's manifest is in the results directory, named by the image's tag (its
    // digest), and the copy carries the tag too.
    let results = example("bakery-results");
    let manifest_file = results.join("manifests").join(format!("{image}.json"));
    let manifest = std::fs::read_to_string(&manifest_file).unwrap();
    let tag = e.image_tags(&image)["bakery:manifest"].clone();
    assert!(tag.starts_with("sha256:"), "{tag}");
    assert_eq!(e.image_tags(&copy).get("bakery:manifest"), Some(&tag));
    let parsed: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(parsed["image"], image.as_str());
    assert!(!parsed["packages"].as_array().unwrap().is_empty());

    let out = bakery(&e, data.path())
        .args(["run", "-f", "examples/aws/failing.yml"])
        .output()
        .unwrap();
    show(&out);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("REJECTED"), "{stderr}");
    // The new image was compared with the pointer's (the copy, which holds what its source
    // holds); both ran the same machine's packages, so the diff is of two real manifests.
    assert!(
        stderr.contains(&format!(
            "changes against /golden/al2023/latest: {image} → ami-"
        )),
        "{stderr}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("failing-junit.json")).unwrap())
            .unwrap();
    assert_eq!(doc["changes"]["against"], copy.as_str());
    assert_eq!(doc["changes"]["diff"]["from"], image.as_str());
    assert!(
        doc["changes"]["diff"]["added"].is_array(),
        "{}",
        doc["changes"]
    );
    assert!(
        stderr.contains("site"),
        "the failed check is named: {stderr}"
    );
    let images = assert_only_images_left(&e, data.path());
    let rejected: Vec<&String> = images
        .iter()
        .filter(|i| **i != image && **i != copy)
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(status_of(&e, rejected[0]), "rejected");
    let pointer = e.ssm(
        "GetParameter",
        serde_json::json!({"Name": "/golden/al2023/latest"}),
    );
    assert_eq!(
        pointer["Parameter"]["Value"],
        copy.as_str(),
        "the pointer did not move"
    );

    // The sweep removes the rejected image with its snapshots, and keeps the promoted one.
    let out = bakery(&e, data.path())
        .args([
            "cleanup",
            "--provider",
            "aws",
            "--region",
            "us-east-1",
            "--older-than",
            "0s",
        ])
        .output()
        .unwrap();
    show(&out);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        sorted(assert_only_images_left(&e, data.path())),
        sorted(vec![image, copy])
    );
}

/// Every call of the flow that creates something, as `action#nth`, and the pipeline variant
/// that reaches it (`ssh` for the ingress rule, which SSM runs never add).
const CREATING_CALLS: &[(&str, usize, &str)] = &[
    ("ec2:ImportKeyPair", 1, "ssm"),
    ("ec2:CreateSecurityGroup", 1, "ssm"),
    ("ec2:AuthorizeSecurityGroupIngress", 1, "ssh"),
    ("ec2:RunInstances", 1, "ssm"),
    ("ssm:SendCommand", 1, "ssm"),
    ("ec2:StopInstances", 1, "ssm"),
    ("ec2:CreateImage", 1, "ssm"),
    ("ec2:CreateTags", 1, "ssm"),
    ("ec2:ImportKeyPair", 2, "ssm"),
    ("ec2:CreateSecurityGroup", 2, "ssm"),
    ("ec2:RunInstances", 2, "ssm"),
    ("ssm:SendCommand", 12, "ssm"),
    ("ssm:PutParameter", 1, "ssm"),
];

fn ssh_variant() -> tempfile::TempPath {
    variant("ssh", |t| {
        t.replace(
            "  transport: ssm ",
            "  ssh_cidr: 203.0.113.7/32\n  transport: ssh ",
        )
    })
}

#[test]
fn a_failure_of_any_creating_call_leaves_nothing_but_a_marked_image() {
    let _g = serial();
    let ssh = ssh_variant();
    for (action, nth, transport) in CREATING_CALLS {
        eprintln!("=== {action}#{nth} fails");
        let e = Endpoint::start();
        e.faults.add(action, *nth, Fault::Deny);
        let data = tempfile::tempdir().unwrap();
        let file = if *transport == "ssh" {
            ssh.to_path_buf()
        } else {
            example("bakery.yml")
        };
        let out = bakery(&e, data.path())
            .args(["run", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        show(&out);
        assert_eq!(
            e.faults.fired(),
            vec![format!("{action}#{nth}")],
            "the fault fired"
        );
        assert_ne!(out.status.code(), Some(0), "{action}#{nth}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(action) || *action == "ssm:SendCommand",
            "the error names {action}: {stderr}"
        );
        for image in assert_only_images_left(&e, data.path()) {
            let status = status_of(&e, &image);
            if *action == "ssm:PutParameter"
                && e.image_tags(&image).contains_key("bakery:copied-from")
            {
                // The image's re-encrypted copy, made before the pointer update failed (in
                // this region or another): never rejected; promoted only if its own
                // region finished.
                assert_ne!(status, "rejected", "{action}#{nth}: copy {image}");
                continue;
            }
            // A probe that failed marks its image rejected. When only a pointer update
            // fails, the image passed every gate: it stays verified (not promoted, since the
            // promotion is incomplete), and `bakery promote` can finish the job.
            let expected = if *action == "ssm:PutParameter" {
                "verified"
            } else {
                "rejected"
            };
            assert_eq!(status, expected, "{action}#{nth}: image {image}");
        }
    }
}

#[test]
fn sigterm_between_calls_releases_everything_the_run_created() {
    let _g = serial();
    for (action, nth) in [
        ("ec2:CreateSecurityGroup", 1),
        ("ec2:RunInstances", 1),
        ("ssm:SendCommand", 2),
        ("ec2:CreateImage", 1),
        ("ec2:RunInstances", 2),
        ("ssm:SendCommand", 13),
    ] {
        eprintln!("=== SIGTERM before {action}#{nth}");
        let e = Endpoint::start();
        let data = tempfile::tempdir().unwrap();
        let child = bakery(&e, data.path())
            .args(["run", "-f", "examples/aws/bakery.yml"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        e.faults.add(action, nth, Fault::Signal(child.id()));
        let out = child.wait_with_output().unwrap();
        show(&out);
        assert_eq!(e.faults.fired(), vec![format!("{action}#{nth}")]);
        if action == "ssm:SendCommand" && nth > 11 {
            // Mid-suite, the interrupted exec becomes a check error in the suite runner, so the
            // run ends as a rejection (exit 1) rather than 143; everything is released all the
            // same, which is what this test is about.
            assert!(
                matches!(out.status.code(), Some(1) | Some(143)),
                "{action}#{nth}: {:?}",
                out.status
            );
        } else {
            assert_eq!(out.status.code(), Some(143), "{action}#{nth}");
        }
        for image in assert_only_images_left(&e, data.path()) {
            assert_eq!(status_of(&e, &image), "rejected", "{action}#{nth}");
        }
    }
}

#[test]
fn after_sigkill_bakery_cleanup_finishes_the_job_from_the_ledger() {
    let _g = serial();
    for (action, nth) in [
        ("ec2:CreateSecurityGroup", 1),
        ("ec2:RunInstances", 1),
        ("ec2:CreateImage", 1),
    ] {
        eprintln!("=== SIGKILL before {action}#{nth}");
        let e = Endpoint::start();
        let data = tempfile::tempdir().unwrap();
        let child = bakery(&e, data.path())
            .args(["run", "-f", "examples/aws/bakery.yml"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        e.faults.add(action, nth, Fault::Kill(child.id()));
        let out = child.wait_with_output().unwrap();
        show(&out);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{action}#{nth}");
        // What the forwarded call created after the kill is there, known to the ledger only
        // by the name or launch tag chosen before the call.
        let created = match action {
            "ec2:CreateSecurityGroup" => "security-group",
            "ec2:RunInstances" => "instance",
            _ => "image",
        };
        // The proxy forwards the call after the kill; give it a moment to land (bounded).
        let mut left = e.leftovers();
        for _ in 0..50 {
            if left.iter().any(|l| l.starts_with(created)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            left = e.leftovers();
        }
        assert!(
            left.iter().any(|l| l.starts_with(created)),
            "the killed run left its {created}: {left:?}; calls: {:?}",
            e.server.actions()
        );
        let ledger = std::fs::read_dir(data.path().join("runs"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(ledger).unwrap();
        let placeholder = match created {
            "instance" => "launch:",
            _ => "name:",
        };
        assert!(text.contains(placeholder), "{text}");

        let out = bakery(&e, data.path()).arg("cleanup").output().unwrap();
        show(&out);
        assert_eq!(out.status.code(), Some(0), "{action}#{nth}");
        assert_eq!(
            e.leftovers(),
            Vec::<String>::new(),
            "{action}#{nth}: cleanup released everything, the resource created after the kill included"
        );
    }
}
