//! Mistakes a user can make get one clear message with file:line:col and exit 2 — never a
//! panic or a backtrace.

use std::path::Path;
use std::process::Command;

const GOOD: &str = "source:\n  local: debian-12\nimage:\n  name: web-{{timestamp}}\nverify:\n  suites: [smoke.yml]\n";

/// Writes `pipeline` (and a valid smoke suite beside it) and runs `bakery bake` on it.
fn bake(pipeline: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("smoke.yml"),
        "checks:\n  - id: true\n    command: { run: \"true\" }\n",
    )
    .unwrap();
    let file = dir.path().join("bakery.yml");
    std::fs::write(&file, pipeline).unwrap();
    run(&["bake", "-f", file.to_str().unwrap()], dir.path())
}

fn run(args: &[&str], data: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bakery"))
        .args(args)
        .env("BAKERY_DATA_DIR", data)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    (out.status.code().unwrap(), stderr)
}

fn assert_located(stderr: &str, location: &str, words: &[&str]) {
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
    assert!(
        stderr.contains(&format!("bakery.yml:{location}:")),
        "{stderr}"
    );
    for w in words {
        assert!(stderr.contains(w), "`{w}` missing from: {stderr}");
    }
}

#[test]
fn bad_indentation() {
    let (code, stderr) = bake("source:\n  local: debian-12\n image:\n  name: x\n");
    assert_eq!(code, 2);
    assert_located(&stderr, "3:2", &["indentation"]);
}

#[test]
fn unknown_key_lists_the_accepted_ones() {
    let (code, stderr) = bake(&GOOD.replace("image:\n", "image:\n  nmae: typo\n"));
    assert_eq!(code, 2);
    assert_located(&stderr, "4:3", &["nmae", "name", "tags"]);
}

#[test]
fn wrong_type_names_the_key_and_the_type() {
    let (code, stderr) = bake(&format!("{GOOD}build:\n  instance:\n    cpus: lots\n"));
    assert_eq!(code, 2);
    assert_located(
        &stderr,
        "9:11",
        &["build.instance.cpus", "lots", "whole number"],
    );
}

#[test]
fn missing_source() {
    let (code, stderr) = bake(&GOOD.replace("source:\n  local: debian-12\n", ""));
    assert_eq!(code, 2);
    assert!(stderr.contains("missing field `source`"), "{stderr}");
    assert!(stderr.contains("bakery.yml:1:1:"), "{stderr}");
}

#[test]
fn two_sources_at_once() {
    let (code, stderr) = bake(&GOOD.replace(
        "  local: debian-12\n",
        "  local: debian-12\n  image: ami-0123456789abcdef0\n",
    ));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("exactly one of `local`, `file` or `image`"),
        "{stderr}"
    );
}

#[test]
fn unknown_template_variable() {
    let (code, stderr) = bake(&GOOD.replace("web-{{timestamp}}", "web-{{git.branch}}"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("image.name") && stderr.contains("git.branch"),
        "{stderr}"
    );
}

#[test]
fn missing_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&["run", "-f", "/nonexistent/bakery.yml"], dir.path());
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/bakery.yml") && stderr.contains("-f/--file"),
        "{stderr}"
    );
}

#[test]
fn wrong_image_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("smoke.yml"),
        "checks:\n  - id: t\n    command: { run: \"true\" }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bakery.yml"), GOOD).unwrap();
    let file = dir.path().join("bakery.yml");
    let (code, stderr) = run(
        &[
            "promote",
            "-f",
            file.to_str().unwrap(),
            "--image",
            "ami-nope",
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("ami-nope") && stderr.contains("bakery images"),
        "{stderr}"
    );
    let (code, stderr) = run(
        &[
            "verify",
            "-f",
            file.to_str().unwrap(),
            "--image",
            "ami-0123456789abcdef0",
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no image `ami-0123456789abcdef0`"),
        "{stderr}"
    );
}

#[test]
fn broken_suite_file_is_reported_before_anything_boots() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("smoke.yml"),
        "checks:\n  - id: t\n    servce: { name: ssh }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bakery.yml"), GOOD).unwrap();
    let file = dir.path().join("bakery.yml");
    let (code, stderr) = run(&["run", "-f", file.to_str().unwrap()], dir.path());
    assert_eq!(code, 2);
    assert!(
        stderr.contains("smoke.yml:3:5") && stderr.contains("servce"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("instances").exists(),
        "nothing was started"
    );
}

#[test]
fn every_subcommand_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "validate", "run", "bake", "verify", "promote", "cleanup", "images", "schema",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_bakery"))
            .args([cmd, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            help.contains("Example: bakery"),
            "{cmd} --help has no example:\n{help}"
        );
    }
    let (code, _) = run(&["image", "bootstrap", "--help"], dir.path());
    assert_eq!(code, 0);
}

#[test]
fn schema_is_json_and_describes_the_top_level_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_bakery"))
        .arg("schema")
        .output()
        .unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in ["provider", "source", "build", "image", "verify", "promote"] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(schema["required"], serde_json::json!(["source", "image"]));
}

/// Writes a minimal image record (and a disk file) into a store at `data`.
fn fake_image(data: &Path, id: &str, parent: Option<&str>) {
    let dir = data.join("images").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("disk.qcow2"), b"").unwrap();
    let record = serde_json::json!({
        "id": id, "name": id, "parent": parent, "tags": {}, "state": "available",
        "created": "2026-11-22T00:00:00Z", "size_bytes": 0, "boot": null
    });
    std::fs::write(dir.join("image.json"), record.to_string()).unwrap();
}

#[test]
fn image_delete_refuses_what_is_still_used_and_removes_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let (base, child) = ("ami-00000000000000001", "ami-00000000000000002");
    fake_image(data.path(), base, None);
    fake_image(data.path(), child, Some(base));
    std::fs::write(
        data.path().join("pointers.json"),
        format!(r#"{{"/golden/web": [{{"version": 1, "image_id": "{child}", "time": "t"}}]}}"#),
    )
    .unwrap();

    let (code, stderr) = run(&["image", "delete", "../../etc"], data.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`../../etc` is not an image id"),
        "{stderr}"
    );
    let (code, stderr) = run(&["image", "delete", "ami-0000000000000000f"], data.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bakery images"), "{stderr}");
    let (code, stderr) = run(&["image", "delete", base], data.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("parent of {child}")), "{stderr}");
    let (code, stderr) = run(&["image", "delete", child], data.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/golden/web"), "{stderr}");
    assert!(data.path().join("images").join(child).exists());

    std::fs::write(data.path().join("pointers.json"), "{}").unwrap();
    for id in [child, base] {
        let (code, stderr) = run(&["image", "delete", id], data.path());
        assert_eq!(code, 0, "{stderr}");
        assert!(!data.path().join("images").join(id).exists());
    }
}

#[test]
fn git_template_outside_a_checkout_fails_before_anything_boots() {
    let (code, stderr) = bake(&GOOD.replace("web-{{timestamp}}", "web-{{git.short_sha}}"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("image.name") && stderr.contains("not in a git checkout"),
        "{stderr}"
    );
    assert!(!stderr.contains("bootstrapping"), "{stderr}");
}

/// `bakery verify --goss` run where there is no pipeline file, from `dir`.
fn verify_goss_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bakery"))
        .args(args)
        .current_dir(dir)
        .env("BAKERY_DATA_DIR", data.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap(), stderr)
}

#[test]
fn a_goss_file_needs_no_pipeline_file_and_its_template_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("goss.yaml"),
        "package:\n  {{ .Vars.web }}:\n    installed: true\nservice:\n  {{ .Vars.web }}: {running: true}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("vars.yaml"), "web: nginx\n").unwrap();
    // Without vars the template names the missing key, its line and its expression.
    let (code, stderr) = verify_goss_in(
        dir.path(),
        &["verify", "--image", "not-an-image", "--goss", "goss.yaml"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "goss.yaml:2:3: Goss template: map has no entry for key: web in `{{ .Vars.web }}`"
        ),
        "{stderr}"
    );
    // With them, the file loads and the run goes on to the image, with the local defaults said.
    let (code, stderr) = verify_goss_in(
        dir.path(),
        &[
            "verify",
            "--image",
            "not-an-image",
            "--goss",
            "goss.yaml",
            "--vars",
            "vars.yaml",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no pipeline file (bakery.yml) here: verifying with the local provider's defaults: a probe with 2 CPUs, 1024 MB, logging in as root"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`not-an-image` is not an image id"),
        "{stderr}"
    );
    // --provider only makes sense without a pipeline file.
    std::fs::write(dir.path().join("bakery.yml"), GOOD).unwrap();
    let (code, stderr) = verify_goss_in(
        dir.path(),
        &[
            "verify",
            "--image",
            "ami-1",
            "--goss",
            "goss.yaml",
            "--provider",
            "aws",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--provider applies only"), "{stderr}");
}

/// Runs `bakery verify` with `pipeline` in a fresh directory holding `files`; verification
/// never starts, so the image need not exist.
fn verify_with(pipeline: &str, files: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let file = dir.path().join("bakery.yml");
    std::fs::write(&file, pipeline).unwrap();
    run(
        &[
            "verify",
            "-f",
            file.to_str().unwrap(),
            "--image",
            "ami-0000000000000000",
        ],
        dir.path(),
    )
}

const CIS: &str = "source:\n  local: debian-12\nimage:\n  name: web\nverify:\n  suites:\n    - builtin: smoke\n    - cis:\n        benchmark: debian-12\n";

#[test]
fn built_in_suites_and_benchmarks_are_named_with_their_place() {
    let (code, stderr) = verify_with(&CIS.replace("builtin: smoke", "builtin: smok"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_located(
        &stderr,
        "7:7",
        &[
            "verify.suites[0].builtin",
            "no built-in suite `smok`",
            "smoke",
        ],
    );
    let (code, stderr) = verify_with(&CIS.replace("debian-12\n", "debian-13\n"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_located(
        &stderr,
        "8:7",
        &["no built-in CIS benchmark `debian-13`", "debian-12"],
    );
    let (code, stderr) = verify_with(&format!("{CIS}        profiles: x\n"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_located(&stderr, "10:9", &["unknown field `profiles`", "profile"]);
    let (code, stderr) = verify_with(
        &format!("{CIS}        variables: {{ssh_max_tries: 3}}\n"),
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_located(
        &stderr,
        "8:7",
        &["variables.ssh_max_tries", "its variables: "],
    );
}

#[test]
fn a_waiver_for_an_unknown_control_is_a_configuration_error() {
    let (code, stderr) = verify_with(
        &format!("{CIS}        waivers: waivers.yml\n"),
        &[(
            "waivers.yml",
            "\"5.1.4\":\n  justification: bastion\n\"5.1.99\":\n  justification: typo\n",
        )],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("waivers.yml:3:1: a waiver for `5.1.99`"),
        "{stderr}"
    );
}

#[test]
fn the_default_suite_is_built_in() {
    // No `verify` at all: a pipeline outside the repository gets the built-in smoke suite
    // instead of `test-suites/smoke.yml is not a file`, so the run gets as far as the image.
    let (code, stderr) = verify_with("source:\n  local: debian-12\nimage:\n  name: web\n", &[]);
    assert!(!stderr.contains("is not a file"), "{stderr}");
    assert!(stderr.contains("ami-0000000000000000"), "{stderr}");
    assert_ne!(code, 0);
}

#[test]
fn two_cis_entries_get_a_suite_name_each_or_a_clear_error() {
    // Two profiles of one benchmark: `cis-debian-12` and `cis-debian-12-level-2-server`, so
    // the run gets as far as the image.
    let two_profiles =
        format!("{CIS}    - cis: {{benchmark: debian-12, profile: level-2-server}}\n");
    let (code, stderr) = verify_with(&two_profiles, &[]);
    assert!(stderr.contains("ami-0000000000000000"), "{stderr}");
    assert!(!stderr.contains("named"), "{stderr}");
    assert_ne!(code, 0);
    // The same benchmark and profile twice: refused before anything boots, at the second.
    let twice = format!("{CIS}    - cis: {{benchmark: debian-12, exclude: {{'5': not here}}}}\n");
    let (code, stderr) = verify_with(&twice, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_located(
        &stderr,
        "10:7",
        &[
            "verify.suites[2].cis",
            "named `cis-debian-12`, as verify.suites[1] is",
            "`name:`",
        ],
    );
    // Named, it runs.
    let named = twice.replace(
        "{benchmark: debian-12, exclude",
        "{name: cis-no-ssh, benchmark: debian-12, exclude",
    );
    let (code, stderr) = verify_with(&named, &[]);
    assert!(stderr.contains("ami-0000000000000000"), "{stderr}");
    assert_ne!(code, 0);
    let (code, stderr) = verify_with(&named.replace("cis-no-ssh", "'no ssh'"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_located(&stderr, "10:7", &["cis.name: `no ssh` is not a suite name"]);
}

const AWS: &str = "provider: aws\nsource:\n  image: ami-0123456789abcdef0\nimage:\n  name: web-{{timestamp}}\nverify:\n  suites: [smoke.yml]\n";

#[test]
fn a_bad_account_id_in_promote_share_is_located() {
    let (code, stderr) = bake(&format!(
        "{AWS}promote:\n  pointer: /golden/web\n  share:\n    accounts: ['01234567890']\n"
    ));
    assert_eq!(code, 2);
    assert_located(
        &stderr,
        "11:16",
        &["01234567890", "not an account id", "12 digits"],
    );
}

#[test]
fn a_bad_ou_arn_and_a_bad_region_are_located() {
    let (code, stderr) = bake(&format!(
        "{AWS}promote:\n  pointer: /golden/web\n  share:\n    organizational_units:\n      - arn:aws:organizations::111122223333:ou/ou-ab12-cdefgh34\n"
    ));
    assert_eq!(code, 2);
    assert_located(
        &stderr,
        "12:9",
        &["not an organizational unit ARN", "ou/o-"],
    );
    let (code, stderr) = bake(&format!(
        "{AWS}promote:\n  pointer: /golden/web\n  regions:\n    - eu-west-1\n    - region: euwest2\n"
    ));
    assert_eq!(code, 2);
    assert_located(&stderr, "12:15", &["euwest2", "not a region name"]);
}

#[test]
fn sharing_without_a_customer_managed_key_in_a_region_is_refused_before_anything_starts() {
    let (code, stderr) = bake(&format!(
        "{AWS}promote:\n  pointer: /golden/web\n  regions:\n    - region: eu-west-1\n      kms_key: alias/golden\n    - us-west-2\n  share:\n    accounts: ['111122223333']\n"
    ));
    assert_eq!(code, 2);
    assert_located(
        &stderr,
        "13:7",
        &["us-west-2", "aws/ebs", "customer-managed key"],
    );
}

#[test]
fn promote_regions_with_the_local_provider_are_refused() {
    let (code, stderr) = bake(&format!(
        "{GOOD}promote:\n  pointer: web\n  regions: [eu-west-1]\n"
    ));
    assert_eq!(code, 2);
    assert_located(
        &stderr,
        "9:3",
        &["promote.regions", "`local` provider", "provider: aws"],
    );
}

#[test]
fn validate_takes_the_pipeline_file_as_an_argument_or_with_f() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("smoke.yml"),
        "checks:\n  - id: true\n    command: { run: \"true\" }\n",
    )
    .unwrap();
    let good = dir.path().join("bakery.yml");
    std::fs::write(&good, GOOD).unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, GOOD.replace("image:\n", "image:\n  nmae: typo\n")).unwrap();
    let good = good.to_str().unwrap();
    let bad = bad.to_str().unwrap();

    assert_eq!(run(&["validate", good], dir.path()).0, 0);
    assert_eq!(run(&["validate", "-f", good], dir.path()).0, 0);
    // The positional file is the one checked, not the default bakery.yml beside it.
    let (code, stderr) = run(&["validate", bad], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.yml:4:3:") && stderr.contains("nmae"),
        "{stderr}"
    );
    // Both ways at once is ambiguous, and clap says so.
    let (code, stderr) = run(&["validate", "-f", good, bad], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
