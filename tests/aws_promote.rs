//! `bakery promote` to several regions against moto, through the test proxy (`aws_common`).
//!
//! What rests on moto's own state: the copies in each region and their snapshots, tags, launch
//! permissions, snapshot volume permissions, and the pointer parameters of each region. What
//! moto fakes or lacks is asserted on the requests Bakery sent (recorded by the proxy): the key
//! and encryption of each CopyImage (moto ignores them), and EnableImageDeprecation (moto has
//! none; the proxy answers as EC2 documents and shows the time in DescribeImages afterwards).
#![cfg(feature = "aws")]

mod aws_common;

use std::path::Path;
use std::process::Command;

use aws_common::{
    bakery, example_copy, repo, serial, show, tags_in, xml_values, Endpoint, Fault, AL2023,
};

const HOME: &str = "us-east-1";
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const POINTER: &str = "/golden/al2023/latest";
const ACCOUNT: &str = "111122223333";
const OU: &str = "arn:aws:organizations::123456789012:ou/o-exampleorgid/ou-ab12-cdefgh34";

fn key_of(region: &str) -> String {
    match region {
        "eu-west-1" => "arn:aws:kms:eu-west-1:123456789012:alias/golden".into(),
        _ => "alias/golden".into(),
    }
}

/// The AWS example as it is (three regions with a key each, shared with an account and an OU,
/// deprecated after 180 days), with its results in `dir`; written next to it.
fn pipeline(dir: &Path) -> tempfile::TempPath {
    let text = std::fs::read_to_string(repo().join("examples/aws/bakery.yml")).unwrap();
    let text = text.replace(
        "  junit: bakery-results/junit.xml",
        &format!("  junit: {}/junit.xml", dir.display()),
    );
    for (region, key) in REGIONS.iter().map(|r| (r, key_of(r))) {
        assert!(
            text.contains(region) && text.contains(&key),
            "the example names {region} and {key}"
        );
    }
    assert!(text.contains(ACCOUNT) && text.contains(OU) && text.contains("deprecate_after: 180d"));
    example_copy(".test-promote-", &text)
}

/// A verified image in us-east-1, made directly in moto as a bake would leave it.
fn verified_image(e: &Endpoint) -> String {
    aws_common::verified_image(e, "golden-al2023-test")
}

/// The images of this account in `region` copied from `source`.
fn copies_in(e: &Endpoint, region: &str, source: &str) -> Vec<String> {
    let xml = e.ec2_in(region, "Action=DescribeImages&Owner.1=self");
    let mut out = Vec::new();
    for id in xml_values(&xml, "imageId") {
        let one = e.ec2_in(region, &format!("Action=DescribeImages&ImageId.1={id}"));
        let desc = xml_values(&one, "description").join(" ");
        if tags_in(&one).get("bakery:copied-from").map(String::as_str) == Some(source)
            || desc.contains(source)
        {
            out.push(id);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every action Bakery called through the proxy is allowed by docs/iam-policy.json.
fn assert_policy_covers(e: &Endpoint) {
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/iam-policy.json")).unwrap(),
    )
    .unwrap();
    let mut allowed = Vec::new();
    for st in policy["Statement"].as_array().unwrap() {
        match &st["Action"] {
            serde_json::Value::String(a) => allowed.push(a.clone()),
            serde_json::Value::Array(a) => {
                allowed.extend(a.iter().map(|x| x.as_str().unwrap().to_string()))
            }
            _ => {}
        }
    }
    // The proxy names query-protocol actions `ec2:…` whatever the service (Auto Scaling too).
    let names: Vec<&str> = allowed.iter().filter_map(|a| a.split(':').nth(1)).collect();
    for action in e.server.actions().iter().filter(|a| !a.is_empty()) {
        let name = action.split(':').nth(1).unwrap_or("");
        assert!(
            names.contains(&name),
            "{action} is called but docs/iam-policy.json does not allow it"
        );
    }
}

fn pointer_in(e: &Endpoint, region: &str) -> (String, u64) {
    let p = e.ssm_in(region, "GetParameter", serde_json::json!({"Name": POINTER}));
    (
        p["Parameter"]["Value"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        p["Parameter"]["Version"].as_u64().unwrap_or(0),
    )
}

/// The promotion is complete in every region: one copy, tagged (with its snapshots), shared
/// with the account and the OU, its snapshots with the account, the pointer naming it.
fn assert_complete(e: &Endpoint, source: &str) -> Vec<String> {
    let mut images = Vec::new();
    for region in REGIONS {
        let copies = copies_in(e, region, source);
        assert_eq!(copies.len(), 1, "one copy in {region}: {copies:?}");
        let copy = &copies[0];
        let xml = e.ec2_in(region, &format!("Action=DescribeImages&ImageId.1={copy}"));
        let tags = tags_in(&xml);
        assert_eq!(
            tags.get("bakery:copied-from").map(String::as_str),
            Some(source),
            "{region}"
        );
        assert_eq!(
            tags.get("bakery:status").map(String::as_str),
            Some("promoted"),
            "{region}"
        );
        assert_eq!(
            tags.get("bakery:pointer").map(String::as_str),
            Some(POINTER),
            "{region}"
        );
        assert_eq!(
            tags.get("app").map(String::as_str),
            Some("baseline"),
            "{region}"
        );
        for snap in xml_values(&xml, "snapshotId") {
            let s = e.ec2_in(
                region,
                &format!("Action=DescribeSnapshots&SnapshotId.1={snap}"),
            );
            let st = tags_in(&s);
            assert_eq!(
                st.get("bakery:copied-from").map(String::as_str),
                Some(source),
                "{snap}"
            );
            let perms = e.ec2_in(
                region,
                &format!("Action=DescribeSnapshotAttribute&SnapshotId={snap}&Attribute=createVolumePermission"),
            );
            assert_eq!(
                xml_values(&perms, "userId"),
                vec![ACCOUNT.to_string()],
                "{snap}"
            );
        }
        let perms = e.ec2_in(
            region,
            &format!("Action=DescribeImageAttribute&ImageId={copy}&Attribute=launchPermission"),
        );
        assert_eq!(
            xml_values(&perms, "userId"),
            vec![ACCOUNT.to_string()],
            "{region}"
        );
        assert_eq!(
            xml_values(&perms, "organizationalUnitArn"),
            vec![OU.to_string()],
            "{region}: {perms}"
        );
        assert_eq!(pointer_in(e, region).0, *copy, "the pointer in {region}");
        images.push(copy.clone());
    }
    images
}

#[test]
fn promotion_copies_shares_and_points_in_three_regions_and_a_second_run_changes_nothing() {
    let _g = serial();
    let e = Endpoint::start();
    let data = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let file = pipeline(results.path());
    let source = verified_image(&e);

    let out = bakery(&e, data.path())
        .args(["promote", "-f"])
        .arg(&file)
        .args(["--image", &source])
        .output()
        .unwrap();
    show(&out);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let images = assert_complete(&e, &source);
    for (region, image) in REGIONS.iter().zip(&images) {
        assert!(
            stderr.contains(&format!("{region}: copied to {image}; 3 permissions granted; pointer {POINTER} -> version 1")),
            "the terminal names {region}'s outcome: {stderr}"
        );
    }

    // What moto ignores, from the requests: each copy encrypted with its region's key, from
    // the source region, with a client token.
    let copies = e.images.copies.lock().unwrap().clone();
    assert_eq!(copies.len(), 3, "{copies:?}");
    for (region, form) in &copies {
        assert_eq!(
            form.get("SourceImageId").map(String::as_str),
            Some(source.as_str())
        );
        assert_eq!(form.get("SourceRegion").map(String::as_str), Some(HOME));
        assert_eq!(
            form.get("Encrypted").map(String::as_str),
            Some("true"),
            "{region}"
        );
        assert_eq!(form.get("KmsKeyId"), Some(&key_of(region)), "{region}");
        assert!(form.contains_key("ClientToken"), "{region}");
    }
    let mut regions: Vec<&str> = copies.iter().map(|(r, _)| r.as_str()).collect();
    regions.sort();
    assert_eq!(regions, ["ap-southeast-2", "eu-west-1", "us-east-1"]);
    // Deprecation: 180 days after the source image's creation, to the minute, on every copy.
    let deprecations = e.images.deprecation_calls.lock().unwrap().clone();
    let mut deprecated: Vec<&str> = deprecations.iter().map(|(i, _)| i.as_str()).collect();
    deprecated.sort();
    let mut expected: Vec<&str> = images.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(deprecated, expected);
    let created = xml_values(
        &e.ec2(&format!("Action=DescribeImages&ImageId.1={source}")),
        "creationDate",
    )
    .remove(0);
    let created = chrono::DateTime::parse_from_rfc3339(&created).unwrap();
    for (_, at) in &deprecations {
        let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
        let days = (at - created).num_seconds() as f64 / 86400.0;
        assert!((180.0..180.001).contains(&days), "{at} vs {created}");
        assert_eq!(at.timestamp() % 60, 0, "{at}");
    }
    // The source image is promoted too.
    assert_eq!(
        e.image_tags(&source)
            .get("bakery:status")
            .map(String::as_str),
        Some("promoted")
    );
    // The JSON results: every region's outcome.
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.path().join("promotion.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["complete"], true);
    for (region, image) in REGIONS.iter().zip(&images) {
        assert_eq!(json["images"][region], image.as_str(), "{json}");
    }
    let first: Vec<&str> = json["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["origin"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["copied", "copied", "copied"]);

    // Again: nothing is copied, granted, deprecated or written, and it says so.
    let modifications = e.images.modifications.lock().unwrap().len();
    let out = bakery(&e, data.path())
        .args(["promote", "-f"])
        .arg(&file)
        .args(["--image", &source])
        .output()
        .unwrap();
    show(&out);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing changed"), "{stderr}");
    for (region, image) in REGIONS.iter().zip(&images) {
        assert!(
            stderr.contains(&format!("{region}: {image} (copied before, reused); pointer {POINTER} unchanged (version 1)")),
            "{stderr}"
        );
        assert_eq!(pointer_in(&e, region), (image.clone(), 1));
    }
    assert_eq!(e.images.copies.lock().unwrap().len(), 3, "no new copy");
    assert_eq!(
        e.images.modifications.lock().unwrap().len(),
        modifications,
        "no new grant"
    );
    assert_eq!(
        e.images.deprecation_calls.lock().unwrap().len(),
        3,
        "no new deprecation"
    );
    assert_eq!(assert_complete(&e, &source), images);

    // `bakery images -f`: each region's image with its pointer, sharing and deprecation.
    let out = bakery(&e, data.path())
        .args(["images", "--json", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    show(&out);
    assert_eq!(out.status.code(), Some(0));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    for (region, image) in REGIONS.iter().zip(&images) {
        let entry = listed
            .iter()
            .find(|x| x["id"] == image.as_str())
            .unwrap_or_else(|| panic!("{image} is listed: {listed:?}"));
        assert_eq!(entry["region"], *region);
        assert_eq!(entry["pointers"], serde_json::json!([POINTER]));
        assert_eq!(
            entry["shared_with"],
            serde_json::json!([format!("account {ACCOUNT}"), format!("ou {OU}")]),
            "{entry}"
        );
        assert!(entry["deprecation"].is_string(), "{entry}");
        assert_eq!(entry["tags"]["bakery:status"], "promoted");
    }
    let home = listed.iter().find(|x| x["id"] == source.as_str()).unwrap();
    assert_eq!(
        home["pointers"],
        serde_json::json!([]),
        "the source itself is not published"
    );

    // A copy (here the baking region's re-encrypted one) is not promoted itself: its source is.
    let out = bakery(&e, data.path())
        .args(["promote", "-f"])
        .arg(&file)
        .args(["--image", &images[0]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("promote {source} instead")),
        "{stderr}"
    );
    assert_policy_covers(&e);
}

/// Each call promotion makes to change something, refused in turn: the run fails naming the
/// region and the command to run again; running it again completes the promotion with no
/// duplicate copy and no permission lost.
#[test]
fn each_refused_call_fails_its_region_and_a_rerun_finishes_without_duplicates() {
    let _g = serial();
    for (action, nth) in [
        ("ec2:CopyImage", 2),
        ("ec2:CreateTags", 2),
        ("ec2:ModifyImageAttribute", 1),
        ("ec2:ModifySnapshotAttribute", 2),
        ("ec2:EnableImageDeprecation", 1),
        ("ssm:PutParameter", 3),
    ] {
        eprintln!("=== {action}#{nth} refused");
        let e = Endpoint::start();
        let data = tempfile::tempdir().unwrap();
        let results = tempfile::tempdir().unwrap();
        let file = pipeline(results.path());
        let source = verified_image(&e);
        e.faults.add(action, nth, Fault::Deny);
        let out = bakery(&e, data.path())
            .args(["promote", "-f"])
            .arg(&file)
            .args(["--image", &source])
            .output()
            .unwrap();
        show(&out);
        assert_eq!(e.faults.fired(), vec![format!("{action}#{nth}")]);
        assert_eq!(out.status.code(), Some(3), "{action}#{nth}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(action), "{action}: {stderr}");
        assert!(stderr.contains("PROMOTION INCOMPLETE"), "{stderr}");
        assert!(
            stderr.contains(&format!("--image {source}` again")),
            "the re-run is named: {stderr}"
        );
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(results.path().join("promotion.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["complete"], false);
        let failed: Vec<&serde_json::Value> = json["regions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "failed")
            .collect();
        assert_eq!(
            failed.len(),
            1,
            "one region failed, the others finished: {json}"
        );
        assert_eq!(json["images"].as_object().unwrap().len(), 2, "{json}");
        // The image is not promoted while a region is missing.
        assert_eq!(
            e.image_tags(&source)
                .get("bakery:status")
                .map(String::as_str),
            Some("verified")
        );

        e.faults.clear();
        let out = bakery(&e, data.path())
            .args(["promote", "-f"])
            .arg(&file)
            .args(["--image", &source])
            .output()
            .unwrap();
        show(&out);
        assert_eq!(out.status.code(), Some(0), "{action}#{nth}: the re-run");
        assert_complete(&e, &source);
        assert_eq!(
            e.image_tags(&source)
                .get("bakery:status")
                .map(String::as_str),
            Some("promoted")
        );
    }
}

/// A pipeline promoting to us-east-1 and eu-west-1 (no sharing), keeping `keep`.
fn two_regions(dir: &Path, keep: usize) -> tempfile::TempPath {
    let text = std::fs::read_to_string(repo().join("examples/aws/bakery.yml")).unwrap();
    let start = text.find("\npromote:").unwrap();
    let mut text = text[..start].replace(
        "  junit: bakery-results/junit.xml",
        &format!("  junit: {}/junit.xml", dir.display()),
    );
    text.push_str(&format!(
        "\npromote:\n  pointer: {POINTER}\n  keep: {keep}\n  regions: [eu-west-1]\n"
    ));
    example_copy(".test-retention-", &text)
}

fn autoscaling(region: &str, params: &str) -> String {
    aws_common::query_in(
        region,
        "autoscaling",
        &format!("{params}&Version=2011-01-01"),
    )
}

fn exists(e: &Endpoint, region: &str, image: &str) -> bool {
    let xml = e.ec2_in(region, "Action=DescribeImages&Owner.1=self");
    xml_values(&xml, "imageId").iter().any(|i| i == image)
}

/// Seven images promoted in turn to two regions; the older ones are used in every way
/// retention knows (a second pointer, another parameter, a stopped instance, a launch
/// template's default and another's latest version, an Auto Scaling group's launch
/// configuration) or not at all (one only by a terminated instance). With `keep: 1`, the
/// dry run prints the plan and deletes nothing; the real run deletes exactly the unused ones,
/// with their snapshots, and keeps every image in use.
#[test]
fn retention_never_deletes_an_image_in_use() {
    let _g = serial();
    let e = Endpoint::start();
    let data = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let keep_all = two_regions(results.path(), 10);
    // generation → (home image, eu-west-1 copy)
    let mut gens: Vec<(String, String)> = Vec::new();
    for n in 0..7 {
        let source = aws_common::verified_image(&e, &format!("golden-gen-{n}"));
        if n == 6 {
            gens.push((source, String::new()));
            break;
        }
        let out = bakery(&e, data.path())
            .args(["promote", "-f"])
            .arg(&keep_all)
            .args(["--image", &source])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copy = pointer_in(&e, "eu-west-1").0;
        assert_ne!(copy, source);
        gens.push((source, copy));
    }
    let eu = |n: usize| gens[n].1.clone();
    // 0: a second pointer at home, another parameter (a plain string) in eu-west-1.
    e.ssm_in(HOME, "PutParameter", serde_json::json!({"Name": "/golden/al2023/previous", "Value": gens[0].0, "Type": "String", "DataType": "aws:ec2:image"}));
    e.ssm_in(
        "eu-west-1",
        "PutParameter",
        serde_json::json!({"Name": "/app/base-image", "Value": eu(0), "Type": "String"}),
    );
    // 1: a stopped instance in eu-west-1.
    let run = e.ec2_in(
        "eu-west-1",
        &format!(
            "Action=RunInstances&ImageId={}&MinCount=1&MaxCount=1&InstanceType=t3.micro",
            eu(1)
        ),
    );
    let stopped = xml_values(&run, "instanceId").remove(0);
    e.ec2_in(
        "eu-west-1",
        &format!("Action=StopInstances&InstanceId.1={stopped}"),
    );
    // 2: a launch template's default version; 3: another template's latest version.
    e.ec2_in(
        "eu-west-1",
        &format!(
            "Action=CreateLaunchTemplate&LaunchTemplateName=web&LaunchTemplateData.ImageId={}",
            eu(2)
        ),
    );
    let base = e.ssm_in(
        "eu-west-1",
        "GetParameter",
        serde_json::json!({"Name": AL2023}),
    );
    let base = base["Parameter"]["Value"].as_str().unwrap().to_string();
    let lt = e.ec2_in(
        "eu-west-1",
        &format!(
            "Action=CreateLaunchTemplate&LaunchTemplateName=batch&LaunchTemplateData.ImageId={base}"
        ),
    );
    let lt = xml_values(&lt, "launchTemplateId").remove(0);
    e.ec2_in("eu-west-1", &format!("Action=CreateLaunchTemplateVersion&LaunchTemplateId={lt}&LaunchTemplateData.ImageId={}", eu(3)));
    // 4: an Auto Scaling group's launch configuration (no instances: the group itself counts).
    autoscaling("eu-west-1", &format!("Action=CreateLaunchConfiguration&LaunchConfigurationName=web-lc&ImageId={}&InstanceType=t3.micro", eu(4)));
    autoscaling("eu-west-1", "Action=CreateAutoScalingGroup&AutoScalingGroupName=web&LaunchConfigurationName=web-lc&MinSize=0&MaxSize=0&DesiredCapacity=0&AvailabilityZones.member.1=eu-west-1a");
    // 5: only a terminated instance, and the pointer until it moves: in use until then.
    let run = e.ec2_in(
        "eu-west-1",
        &format!(
            "Action=RunInstances&ImageId={}&MinCount=1&MaxCount=1&InstanceType=t3.micro",
            eu(5)
        ),
    );
    let gone = xml_values(&run, "instanceId").remove(0);
    e.ec2_in(
        "eu-west-1",
        &format!("Action=TerminateInstances&InstanceId.1={gone}"),
    );

    let keep_one = two_regions(results.path(), 1);
    let newest = gens[6].0.clone();
    let promote = |dry: bool| {
        let mut cmd = bakery(&e, data.path());
        cmd.args(["promote", "-f"])
            .arg(&keep_one)
            .args(["--image", &newest]);
        if dry {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().unwrap();
        show(&out);
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let in_use_eu = [
        (0, "parameter /app/base-image".to_string()),
        (1, format!("instance {stopped} (stopped)")),
        (2, "launch template web".to_string()),
        (3, "$Latest version".to_string()),
        (
            4,
            "Auto Scaling group web (launch configuration web-lc)".to_string(),
        ),
    ];

    let plan = promote(true);
    assert!(plan.contains("nothing was changed"), "{plan}");
    let eu_line = plan
        .lines()
        .find(|l| l.contains("retention in eu-west-1"))
        .unwrap();
    // Before the promotion, the pointer still names generation 5.
    assert!(
        eu_line.contains(&format!("keeps {} (in use: parameter {POINTER})", eu(5))),
        "{eu_line}"
    );
    assert!(!eu_line.contains("deletes"), "{eu_line}");
    for (n, what) in &in_use_eu {
        assert!(
            eu_line.contains(&format!("keeps {} (in use: ", eu(*n))),
            "{n}: {eu_line}"
        );
        assert!(eu_line.contains(what.as_str()), "{what}: {eu_line}");
    }
    let home_line = plan
        .lines()
        .find(|l| l.contains("retention in us-east-1"))
        .unwrap();
    let deletes = home_line
        .split("; ")
        .find_map(|part| part.strip_prefix("deletes "))
        .unwrap_or_else(|| panic!("{home_line}"));
    let mut deleted: Vec<&str> = deletes.split(", ").collect();
    deleted.sort();
    let mut unused: Vec<&str> = gens[1..5].iter().map(|(h, _)| h.as_str()).collect();
    unused.sort();
    assert_eq!(deleted, unused, "{home_line}");
    assert!(
        home_line.contains(&format!(
            "keeps {} (in use: parameter /golden/al2023/previous)",
            gens[0].0
        )),
        "{home_line}"
    );
    for (home, copy) in &gens[..6] {
        assert!(
            exists(&e, HOME, home) && exists(&e, "eu-west-1", copy),
            "the dry run deleted nothing"
        );
    }
    assert_eq!(
        pointer_in(&e, "eu-west-1").0,
        gens[5].1,
        "the dry run moved no pointer"
    );
    assert_eq!(
        pointer_in(&e, HOME).0,
        gens[5].0,
        "the dry run moved no pointer"
    );

    let out = promote(false);
    // The plan is printed before the first deletion.
    let planned = out.find("retention in eu-west-1").unwrap();
    let first_delete = out.find("retention: deleted").unwrap();
    assert!(planned < first_delete, "{out}");
    for n in 0..5 {
        assert!(exists(&e, "eu-west-1", &eu(n)), "in use, kept: {n}");
    }
    assert!(!exists(&e, "eu-west-1", &eu(5)), "unused: deleted");
    let snaps = e.ec2_in("eu-west-1", "Action=DescribeSnapshots&Owner.1=self");
    let copy5 = &gens[5].1;
    assert!(
        !snaps.contains(copy5),
        "the deleted copy's snapshots are gone too"
    );
    // At home only the second pointer keeps an old image.
    assert!(exists(&e, HOME, &gens[0].0));
    for (home, _) in &gens[1..6] {
        assert!(!exists(&e, HOME, home), "{home} is unused at home: deleted");
    }
    assert_eq!(pointer_in(&e, HOME).0, newest);
    assert_policy_covers(&e);
}

/// The GitHub Action in `promote` mode (`bakery action`, as the runner starts it): the `images`
/// output maps each region to its image, and the job summary has a row per region.
#[test]
fn the_action_outputs_each_regions_image_and_summarises_every_region() {
    let _g = serial();
    let e = Endpoint::start();
    let root = tempfile::tempdir().unwrap();
    let file = pipeline(root.path());
    let source = verified_image(&e);
    let output = root.path().join("output");
    let summary = root.path().join("summary");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_bakery"))
        .arg("action")
        .current_dir(repo())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", repo())
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env("INPUT_MODE", "promote")
        .env("INPUT_IMAGE", &source)
        .env("INPUT_PIPELINE", file.strip_prefix(repo()).unwrap())
        .env("BAKERY_AWS_ENDPOINT_URL", e.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    eprintln!("the action took {:.1} s", started.elapsed().as_secs_f64());
    show(&out);
    assert_eq!(out.status.code(), Some(0));
    let outputs = std::fs::read_to_string(&output).unwrap();
    let images = outputs
        .split_once("images<<")
        .and_then(|(_, rest)| rest.lines().nth(1))
        .unwrap_or_else(|| panic!("an images output: {outputs}"));
    let images: std::collections::BTreeMap<String, String> = serde_json::from_str(images).unwrap();
    assert_eq!(
        images.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ap-southeast-2", "eu-west-1", "us-east-1"]
    );
    for (region, image) in &images {
        assert_eq!(pointer_in(&e, region).0, *image, "{region}");
        assert_eq!(copies_in(&e, region, &source), vec![image.clone()]);
    }
    let summary = std::fs::read_to_string(&summary).unwrap();
    for (region, image) in &images {
        assert!(
            summary.contains(&format!(
                "| `{region}` | `{image}` | copied, 3 permission(s) granted | `{POINTER}` → version 1 |"
            )),
            "{summary}"
        );
    }
}
