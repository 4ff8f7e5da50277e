//! The action's container image (the Dockerfile's final stage, built by
//! scripts/container-test.sh from a static musl binary built on this machine) running its
//! entrypoint with the environment and mounts GitHub's runner gives a container action.
//!
//! The local provider's QEMU cannot run in there, so these runs exercise the modes that need
//! no virtual machine: a configuration error, bad inputs, promotion on a release tag (refused
//! and accepted, against a local store mounted from the host), `outdated`, and the post step.
//! The container has no network (`--network none`).

mod action_support;

use action_support::runner::{container_image, Where};
use action_support::scenarios;

fn container() -> Where {
    Where::Container(container_image())
}

#[test]
fn configuration_error() {
    scenarios::configuration_error(&container());
}

#[test]
fn bad_inputs() {
    scenarios::bad_inputs(&container());
}

#[test]
fn release_promotes_the_verified_image() {
    scenarios::release_promotes_the_verified_image(&container());
}

#[test]
fn release_refuses_an_image_that_did_not_pass() {
    scenarios::release_refuses_an_image_that_did_not_pass(&container());
}

#[test]
fn outdated() {
    scenarios::outdated(&container());
}

#[test]
fn validate() {
    scenarios::validate(&container());
}

#[test]
fn post_step_releases_leftovers() {
    scenarios::post_step_releases_leftovers(&container());
}

/// The image holds the static binary and CA certificates, and nothing else.
#[test]
fn the_image_is_minimal() {
    let image = container_image();
    let out = std::process::Command::new("podman")
        .args([
            "--runtime",
            "runc",
            "image",
            "inspect",
            &image,
            "--format",
            "{{json .Config}}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bakery"]));
    assert_eq!(config["Cmd"], serde_json::json!(["action"]));
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{config}"
    );
    // `--version` inside: the binary runs with nothing but itself.
    let out = std::process::Command::new("podman")
        .args([
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &image,
            "--version",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("bakery "));
}
