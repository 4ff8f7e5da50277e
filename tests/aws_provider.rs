//! The `aws` provider's methods against moto's server (through the test proxy, which only
//! forwards here unless a fault is injected). Every assertion reads the endpoint's own state
//! back (DescribeInstances, DescribeVolumes, DescribeSecurityGroups, ...); none rests on what
//! moto only pretends (instant state changes are merely waited through; console output, Run
//! Command output and copy encryption are not relied on).
#![cfg(feature = "aws")]

mod aws_common;

use std::time::Duration;

use aws_common::{launch, serial, tags_in, xml_values, Endpoint, Fault, Launched, AL2023};
use bakery::cloud::aws::{sweep, AwsProvider, Clients};
use bakery::cloud::{LaunchRequest, Provider, Role, Tags};
use bakery::config::{AwsSettings, AwsTransport, ImageFilter, InstanceSettings, Source};
use bakery::ledger::{Ledger, Resource};
use bakery::transport::ssh::KeyPair;

fn provider(e: &Endpoint, settings: AwsSettings) -> AwsProvider {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let clients = Clients::load(Some("us-east-1"), Some(&e.url())).unwrap();
    AwsProvider::with_clients(clients, settings, "test.yml")
}

/// The inbound rules of a DescribeSecurityGroups answer (not the outbound ones).
fn ingress_of(xml: &str) -> String {
    let start = xml.find("<ipPermissions>").map_or(xml.len(), |i| i);
    let rest = &xml[start..];
    let end = rest.find("</ipPermissions>").unwrap_or(rest.len());
    rest[..end].to_string()
}

fn run_tags(run: &str) -> Tags {
    Tags::from([
        ("bakery:run-id".to_string(), run.to_string()),
        ("bakery:created-by".to_string(), "bakery".to_string()),
    ])
}

#[test]
fn source_images_resolve_by_id_parameter_and_filter_and_misses_say_what_was_searched() {
    let _g = serial();
    let e = Endpoint::start();
    let p = provider(&e, AwsSettings::default());
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::create(dir.path(), "run-20260101T000000-aaaaaa").unwrap();

    let by_param = p
        .resolve_source(&Source::SsmParameter(AL2023.into()), &ledger)
        .unwrap();
    assert!(by_param.id.starts_with("ami-"));
    assert_eq!(by_param.state, "available");
    let by_id = p
        .resolve_source(&Source::Image(by_param.id.clone()), &ledger)
        .unwrap();
    assert_eq!(by_id.id, by_param.id);

    let filter = ImageFilter {
        name: "al2023-ami-*".into(),
        owners: vec!["amazon".into()],
        architecture: "x86_64".into(),
    };
    let newest = p
        .resolve_source(&Source::Filter(filter.clone()), &ledger)
        .unwrap();
    assert!(newest.name.starts_with("al2023-ami-"), "{}", newest.name);

    let err = p
        .resolve_source(
            &Source::Filter(ImageFilter {
                name: "no-such-image-*".into(),
                ..filter
            }),
            &ledger,
        )
        .unwrap_err()
        .to_string();
    for needle in ["no-such-image-*", "amazon", "x86_64", "us-east-1"] {
        assert!(err.contains(needle), "{err}");
    }
    let err = p
        .resolve_source(&Source::SsmParameter("/no/such/parameter".into()), &ledger)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/no/such/parameter"), "{err}");
}

#[test]
fn launch_capture_and_terminate_leave_only_the_tagged_image() {
    let _g = serial();
    let e = Endpoint::start();
    let settings = AwsSettings {
        transport: AwsTransport::Ssh,
        ssh_cidr: Some("203.0.113.7/32".into()),
        volume_size_gb: Some(12),
        ..Default::default()
    };
    let p = provider(&e, settings);
    let dir = tempfile::tempdir().unwrap();
    let run = "run-20260101T000000-bbbbbb";
    let ledger = Ledger::create(dir.path(), run).unwrap();
    let source = p
        .resolve_source(&Source::SsmParameter(AL2023.into()), &ledger)
        .unwrap();
    let key = KeyPair::generate("bakery-test").unwrap();
    let instance = p
        .launch(
            &LaunchRequest {
                image: &source,
                role: Role::Builder,
                settings: &InstanceSettings::default(),
                key: &key,
                tags: run_tags(run),
            },
            &ledger,
        )
        .unwrap();

    // The ledger names the real ids before the pipeline moves on.
    let entries = ledger.snapshot().entries;
    let kinds: Vec<(String, String)> = entries
        .iter()
        .filter_map(|en| match &en.resource {
            Resource::Cloud { kind, id, .. } => Some((kind.clone(), id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ["key-pair", "security-group", "instance"]
    );
    assert!(kinds[1].1.starts_with("sg-"), "{kinds:?}");
    assert_eq!(kinds[2].1, instance.id);

    // The instance: IMDSv2 only, tagged, with the run's key.
    let xml = e.ec2(&format!(
        "Action=DescribeInstances&InstanceId.1={}",
        instance.id
    ));
    assert!(xml.contains("<httpTokens>required</httpTokens>"), "{xml}");
    let tags = tags_in(&xml);
    assert_eq!(tags.get("bakery:run-id").map(String::as_str), Some(run));
    assert_eq!(
        tags.get("bakery:created-by").map(String::as_str),
        Some("bakery")
    );
    assert!(tags.contains_key("bakery:expires"));
    let key_name = &kinds[0].1;
    assert!(xml.contains(&format!("<keyName>{key_name}</keyName>")));
    // Its root volume: encrypted gp3 of the configured size.
    let vols = e.ec2(&format!(
        "Action=DescribeVolumes&Filter.1.Name=attachment.instance-id&Filter.1.Value.1={}",
        instance.id
    ));
    assert!(vols.contains("<encrypted>true</encrypted>"), "{vols}");
    assert!(vols.contains("<volumeType>gp3</volumeType>"), "{vols}");
    assert!(vols.contains("<size>12</size>"), "{vols}");
    // The key pair is the run's ed25519 public key.
    let keys = e.ec2(&format!("Action=DescribeKeyPairs&KeyName.1={key_name}"));
    assert!(keys.contains("ed25519"), "{keys}");
    // The security group lets in SSH from the runner's /32 and nothing else.
    let sg = e.ec2(&format!(
        "Action=DescribeSecurityGroups&GroupId.1={}",
        kinds[1].1
    ));
    let ingress = ingress_of(&sg);
    assert_eq!(xml_values(&ingress, "cidrIp"), ["203.0.113.7/32"], "{sg}");
    assert_eq!(xml_values(&ingress, "fromPort"), ["22"]);

    // The image, and its snapshots tagged afterwards.
    let image = p
        .create_image(
            &instance,
            "golden-test-1",
            &Tags::from([("app".to_string(), "web".to_string())]),
            &ledger,
        )
        .unwrap();
    assert_eq!(image.state, "available");
    let image_tags = e.image_tags(&image.id);
    assert_eq!(image_tags.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        image_tags.get("bakery:run-id").map(String::as_str),
        Some(run)
    );
    let imgxml = e.ec2(&format!("Action=DescribeImages&ImageId.1={}", image.id));
    let snaps = xml_values(&imgxml, "snapshotId");
    assert!(!snaps.is_empty());
    for s in &snaps {
        let sx = e.ec2(&format!("Action=DescribeSnapshots&SnapshotId.1={s}"));
        assert_eq!(
            tags_in(&sx).get("bakery:run-id").map(String::as_str),
            Some(run),
            "{sx}"
        );
    }
    // A second image of the same name is refused before anything is created.
    let err = p
        .create_image(&instance, "golden-test-1", &Tags::new(), &ledger)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exists already"), "{err}");

    p.terminate(&instance, &ledger).unwrap();
    let mut expected: Vec<String> = vec![format!("image {}", image.id)];
    expected.extend(snaps.iter().map(|s| format!("snapshot {s}")));
    expected.sort();
    assert_eq!(e.leftovers(), expected);
    assert!(ledger.unwind(Some(&p)).is_empty());
    assert_eq!(e.leftovers(), expected, "the image outlives the run");

    p.delete_image(&image.id).unwrap();
    assert_eq!(e.leftovers(), Vec::<String>::new());
}

#[test]
fn an_ssm_probe_gets_a_group_without_any_inbound_rule() {
    let _g = serial();
    let e = Endpoint::start();
    let p = provider(
        &e,
        AwsSettings {
            transport: AwsTransport::Ssm,
            instance_profile: Some("bakery-ssm".into()),
            ..Default::default()
        },
    );
    let Launched {
        dir: _dir,
        ledger,
        instance: probe,
        ..
    } = launch(
        &p,
        "run-20260101T000000-cccccc",
        Role::Probe,
        &InstanceSettings::default(),
        run_tags("run-20260101T000000-cccccc"),
    );
    let xml = e.ec2(&format!(
        "Action=DescribeInstances&InstanceId.1={}",
        probe.id
    ));
    let sg = xml_values(&xml, "groupId")[0].clone();
    let sgx = e.ec2(&format!("Action=DescribeSecurityGroups&GroupId.1={sg}"));
    let ingress = ingress_of(&sgx);
    assert!(xml_values(&ingress, "cidrIp").is_empty(), "{sgx}");
    assert!(xml_values(&ingress, "fromPort").is_empty(), "{sgx}");
    assert!(ledger.unwind(Some(&p)).is_empty());
    assert_eq!(e.leftovers(), Vec::<String>::new());
}

#[test]
fn pointers_are_ssm_parameters_with_history() {
    let _g = serial();
    let e = Endpoint::start();
    let p = provider(&e, AwsSettings::default());
    let name = "/golden/test/latest";
    assert_eq!(p.pointer(name).unwrap(), None);
    // moto validates aws:ec2:image values against its images: use real ones.
    let images = e.ec2("Action=DescribeImages&Owner.1=amazon");
    let ids = xml_values(&images, "imageId");
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(p.set_pointer(name, a).unwrap(), 1);
    assert_eq!(
        p.set_pointer(name, a).unwrap(),
        1,
        "same value: no new version"
    );
    assert_eq!(p.set_pointer(name, b).unwrap(), 2);
    assert_eq!(p.pointer(name).unwrap().as_deref(), Some(b.as_str()));
    assert_eq!(
        p.pointer_history(name).unwrap(),
        vec![(1, a.clone()), (2, b.clone())]
    );
    assert_eq!(p.pointers().unwrap().get(name), Some(b));
    let stored = e.ssm(
        "DescribeParameters",
        serde_json::json!({"ParameterFilters": [{"Key": "Name", "Values": [name]}]}),
    );
    assert_eq!(
        stored["Parameters"][0]["DataType"], "aws:ec2:image",
        "{stored}"
    );
}

#[test]
fn a_refused_call_names_the_action() {
    let _g = serial();
    let e = Endpoint::start();
    let p = provider(&e, AwsSettings::default());
    e.faults.add("ec2:DescribeImages", 1, Fault::Deny);
    let err = p.image("ami-0123456789abcdef0").unwrap_err().to_string();
    assert!(err.contains("ec2:DescribeImages"), "{err}");
    assert!(err.contains("access denied"), "{err}");
    assert!(err.contains("docs/iam-policy.json"), "{err}");
    e.faults.add("ssm:PutParameter", 1, Fault::Deny);
    let err = p
        .set_pointer("/x", "ami-0123456789abcdef0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ssm:PutParameter"), "{err}");
}

#[test]
fn the_sweep_removes_old_leftovers_by_tag_and_a_dry_run_only_lists() {
    let _g = serial();
    let e = Endpoint::start();
    let p = provider(
        &e,
        AwsSettings {
            transport: AwsTransport::Ssm,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let run = &format!("run-{}-dddddd", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    let ledger = Ledger::create(dir.path(), run).unwrap();
    let source = p
        .resolve_source(&Source::SsmParameter(AL2023.into()), &ledger)
        .unwrap();
    let key = KeyPair::generate("k").unwrap();
    let builder = p
        .launch(
            &LaunchRequest {
                image: &source,
                role: Role::Builder,
                settings: &InstanceSettings::default(),
                key: &key,
                tags: run_tags(run),
            },
            &ledger,
        )
        .unwrap();
    let image = p
        .create_image(&builder, "golden-sweep", &Tags::new(), &ledger)
        .unwrap();
    p.tag_image(
        &image.id,
        &Tags::from([("bakery:status".to_string(), "rejected".to_string())]),
    )
    .unwrap();
    // The run is "killed": its ledger is never unwound. Everything is still there.
    let before = e.leftovers();
    assert_eq!(
        before.iter().filter(|l| l.starts_with("instance")).count(),
        1
    );

    let young = sweep::sweep(&p, Duration::from_secs(7200), false).unwrap();
    assert!(young.removed.is_empty());
    assert!(young.kept.len() >= 4, "{:?}", young.kept);

    let dry = sweep::sweep(&p, Duration::ZERO, true).unwrap();
    assert!(dry.removed.len() >= 4);
    assert_eq!(e.leftovers(), before, "a dry run changes nothing");

    let swept = sweep::sweep(&p, Duration::ZERO, false).unwrap();
    assert!(swept.errors.is_empty(), "{:?}", swept.errors);
    assert_eq!(e.leftovers(), Vec::<String>::new());
}
