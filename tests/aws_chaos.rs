//! Power faults of failure-mode experiments on the `aws` provider, against moto's server: the
//! EC2 calls made, in order, and the waiters between them. moto changes states instantly, so
//! the assertions are about the calls Bakery made and the state read back, never about how
//! long anything took.
#![cfg(feature = "aws")]

mod aws_common;

use aws_common::{launch, serial, xml_values, Endpoint, Launched};
use bakery::cloud::aws::{AwsProvider, Clients};
use bakery::cloud::{PowerAction, Provider, Role, Tags};
use bakery::config::{AwsSettings, AwsTransport, InstanceSettings};

/// A transport that must not be used: EC2 reboots through its API, not through the guest.
struct Unused;

impl bakery::transport::Transport for Unused {
    fn exec(
        &self,
        command: &str,
        _: std::time::Duration,
        _: &mut dyn FnMut(bakery::transport::Stream, &str),
    ) -> bakery::Result<bakery::transport::ExecOutput> {
        panic!("the aws provider ran `{command}` on the guest");
    }
    fn upload(&self, _: &[u8], path: &str, _: u32) -> bakery::Result<()> {
        panic!("the aws provider uploaded {path}");
    }
    fn endpoint(&self) -> String {
        "unused".into()
    }
}

#[test]
fn reboot_and_stop_start_go_through_the_ec2_api_with_waiters() {
    let _g = serial();
    let e = Endpoint::start();
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let clients = Clients::load(Some("us-east-1"), Some(&e.url())).unwrap();
    let settings = AwsSettings {
        transport: AwsTransport::Ssh,
        ssh_cidr: Some("203.0.113.7/32".into()),
        ..Default::default()
    };
    let p = AwsProvider::with_clients(clients, settings, "test.yml");
    let Launched {
        dir: _dir,
        ledger,
        instance,
        ..
    } = launch(
        &p,
        "run-20260101T000000-cccccc",
        Role::Probe,
        &InstanceSettings::default(),
        Tags::new(),
    );

    let before = e.server.actions().len();
    p.power(&instance, PowerAction::Reboot, &Unused).unwrap();
    let calls: Vec<String> = e.server.actions()[before..].to_vec();
    assert_eq!(calls[0], "ec2:RebootInstances", "{calls:?}");
    assert!(
        calls[1..].iter().all(|c| c == "ec2:DescribeInstances"),
        "{calls:?}"
    );

    let before = e.server.actions().len();
    p.power(&instance, PowerAction::StopStart, &Unused).unwrap();
    let calls: Vec<String> = e.server.actions()[before..].to_vec();
    let stop = calls
        .iter()
        .position(|c| c == "ec2:StopInstances")
        .expect("stopped");
    let start = calls
        .iter()
        .position(|c| c == "ec2:StartInstances")
        .expect("started");
    assert!(stop < start, "{calls:?}");
    assert!(
        calls[stop + 1..start]
            .iter()
            .any(|c| c == "ec2:DescribeInstances"),
        "waited for `stopped` before starting: {calls:?}"
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("ec2:DescribeInstances"),
        "{calls:?}"
    );
    let state = e.ec2(&format!(
        "Action=DescribeInstances&InstanceId.1={}",
        instance.id
    ));
    assert_eq!(
        xml_values(&state, "name").first().map(String::as_str),
        Some("running")
    );

    let err = p
        .power(&instance, PowerAction::HardReset, &Unused)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hard-reset") && err.contains("stop-start"),
        "{err}"
    );
    let err = p.set_paused(&instance, true).unwrap_err().to_string();
    assert!(
        err.contains("`aws` provider cannot make the fault `pause`"),
        "{err}"
    );

    p.terminate(&instance, &ledger).unwrap();
    assert!(ledger.unwind(Some(&p)).is_empty());
}
