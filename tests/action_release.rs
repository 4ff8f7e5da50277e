//! The release workflow (.github/workflows/release.yml) cannot run here (no registry, no
//! GitHub, no arm64 runner), so it is read: when it runs, which jobs with which permissions,
//! what each job hands the next, what it publishes. Its file work is scripts/release.sh, which
//! is run here, down to a dry run of the build that can run on this machine: the static musl
//! binary and the image's final stage with podman.

mod action_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use action_support::github_server::{tree_of, Behaviour, FakeGitHub};
use action_support::openapi::Spec;
use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn release() -> Value {
    let path = repo().join(".github/workflows/release.yml");
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn steps(job: &Value) -> &Vec<Value> {
    job["steps"].as_sequence().unwrap()
}

/// The steps of `job` that use `action` (owner/name, any ref).
fn uses<'a>(job: &'a Value, action: &str) -> Vec<&'a Value> {
    steps(job)
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.split('@').next() == Some(action))
        })
        .collect()
}

/// All `run:` scripts of a job, one string.
fn scripts(job: &Value) -> String {
    steps(job)
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// GitHub's filter pattern syntax for branches and tags (`*`, `**`, `?`, `+`, `[...]`), as a
/// regular expression over the whole name.
fn github_filter(pattern: &str) -> regex::Regex {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                re.push_str(".*");
            }
            '*' => re.push_str("[^/]*"),
            '?' | '+' => re.push(c),
            '[' => {
                re.push('[');
                for c in chars.by_ref() {
                    re.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).unwrap()
}

#[test]
fn runs_on_version_tags_only() {
    let w = release();
    assert_eq!(keys(&w["on"]), set(&["push"]), "only tag pushes start it");
    assert!(w["on"]["push"]["branches"].is_null());
    let patterns: Vec<regex::Regex> = w["on"]["push"]["tags"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| github_filter(p.as_str().unwrap()))
        .collect();
    let matches = |tag: &str| patterns.iter().any(|p| p.is_match(tag));
    for tag in ["v1.2.3", "v0.1.0", "v10.20.30"] {
        assert!(matches(tag), "{tag} starts a release");
    }
    // The moving major tag the release itself writes must not start another one.
    for tag in ["v1", "v1.2", "1.2.3", "v1.2.3-rc.1", "vx.y.z", "v1.2.3/x"] {
        assert!(!matches(tag), "{tag} does not start a release");
    }
    // And scripts/release.sh agrees on what a version is.
    for tag in ["v1", "v1.2", "1.2.3", "v1.2.3-rc.1", "v01.2.3"] {
        let out = release_sh(&["meta", tag, "owner/bakery"], &repo());
        assert_eq!(out.status.code(), Some(2), "meta {tag}: {}", text(&out));
        assert!(
            text(&out).contains("expected vMAJOR.MINOR.PATCH"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn jobs_and_their_permissions() {
    let w = release();
    // No token permission unless a job asks for it.
    assert_eq!(
        w["permissions"],
        Value::Mapping(Default::default()),
        "workflow-level permissions are {{}}"
    );
    let jobs = &w["jobs"];
    assert_eq!(keys(jobs), set(&["build", "image", "release"]));
    let perms = |job: &str| -> Vec<(String, String)> {
        jobs[job]["permissions"]
            .as_mapping()
            .unwrap_or_else(|| panic!("job {job} sets its permissions"))
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap().to_string(),
                    v.as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // Building and pushing by digest: the registry, nothing else.
    assert_eq!(
        perms("build"),
        pairs(&[("contents", "read"), ("packages", "write")])
    );
    // Tagging the image and attesting it.
    assert_eq!(
        perms("image"),
        pairs(&[
            ("contents", "read"),
            ("packages", "write"),
            ("id-token", "write"),
            ("attestations", "write"),
        ])
    );
    // The release commit, the tags and the GitHub release; no registry access.
    assert_eq!(
        perms("release"),
        pairs(&[
            ("contents", "write"),
            ("id-token", "write"),
            ("attestations", "write"),
        ])
    );
    assert_eq!(jobs["image"]["needs"], "build");
    let needs: BTreeSet<String> = jobs["release"]["needs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(needs, set(&["build", "image"]));
    for (name, job) in jobs.as_mapping().unwrap() {
        assert!(
            job["timeout-minutes"].as_u64().is_some(),
            "job {name:?} has a timeout"
        );
    }
}

#[test]
fn build_makes_both_architectures_on_native_runners() {
    let w = release();
    let build = &w["jobs"]["build"];
    let matrix: Vec<(String, String)> = build["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["arch"].as_str().unwrap().to_string(),
                m["runner"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let arches: BTreeSet<&str> = matrix.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(arches, ["amd64", "arm64"].into_iter().collect());
    for (arch, runner) in &matrix {
        // No emulation: an arm64 build under QEMU would take hours.
        assert_eq!(
            runner.ends_with("-arm"),
            arch == "arm64",
            "{arch} builds on {runner}"
        );
    }
    assert_eq!(build["runs-on"], "${{ matrix.runner }}");
    let builds = uses(build, "docker/build-push-action");
    assert_eq!(builds.len(), 2, "the binary stage, then the image");
    let (binary, image) = (&builds[0]["with"], &builds[1]["with"]);
    for b in [binary, image] {
        assert_eq!(b["platforms"], "linux/${{ matrix.arch }}");
        assert_eq!(b["context"], ".");
    }
    // The binary stage exists in the Dockerfile and is written out, not pushed.
    assert_eq!(binary["target"], "binary");
    assert_eq!(binary["outputs"], "type=local,dest=dist");
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("\nFROM scratch AS binary\n"));
    // The image is the final stage, pushed by digest only (the tags come once both exist),
    // with BuildKit's provenance and SBOM attached.
    assert!(image["target"].is_null(), "the final stage");
    let outputs = image["outputs"].as_str().unwrap();
    for part in [
        "type=image",
        "push-by-digest=true",
        "push=true",
        "name=${{ steps.meta.outputs.image }}",
    ] {
        assert!(outputs.split(',').any(|p| p == part), "{outputs}: {part}");
    }
    assert_eq!(image["provenance"], "mode=max");
    assert_eq!(image["sbom"], true);
    // The next jobs get the digest and the binary per architecture.
    let artifacts: BTreeSet<String> = uses(build, "actions/upload-artifact")
        .iter()
        .map(|s| s["with"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        artifacts,
        set(&["digest-${{ matrix.arch }}", "binary-${{ matrix.arch }}"])
    );
    let run = scripts(build);
    // The download is static (no program interpreter) and runs on its own architecture.
    assert!(
        run.contains(r#"readelf -l "$bin" | grep -q INTERP"#),
        "{run}"
    );
    assert!(run.contains(r#"bin="dist/bakery-linux-$ARCH""#), "{run}");
    assert!(run.contains(r#""$bin" --version"#), "{run}");
}

#[test]
fn image_job_tags_attests_and_hands_on_the_digest() {
    let w = release();
    let job = &w["jobs"]["image"];
    assert_eq!(keys(&job["outputs"]), set(&["image", "version", "digest"]));
    // Each output comes from a step of this job that exists.
    let ids: BTreeSet<String> = steps(job)
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    let step_output =
        regex::Regex::new(r"^\$\{\{ steps\.([a-z-]+)\.outputs\.([a-z-]+) \}\}$").unwrap();
    for (name, value) in job["outputs"].as_mapping().unwrap() {
        let value = value.as_str().unwrap();
        let c = step_output
            .captures(value)
            .unwrap_or_else(|| panic!("output {name:?} = {value}"));
        assert!(ids.contains(&c[1]), "output {name:?} reads step {}", &c[1]);
    }
    let run = scripts(job);
    assert!(run.contains("docker buildx imagetools create"), "{run}");
    assert!(
        run.contains(r#"--tag "$IMAGE:$VERSION" --tag "$IMAGE:$MAJOR""#),
        "{run}"
    );
    assert!(run.contains("digests/$arch"), "{run}");
    // Provenance and SBOM attestations for the multi-architecture digest, in the registry.
    for action in ["actions/attest-build-provenance", "actions/attest-sbom"] {
        let steps = uses(job, action);
        assert_eq!(steps.len(), 1, "{action}");
        let with = &steps[0]["with"];
        assert_eq!(with["subject-name"], "${{ steps.meta.outputs.image }}");
        assert_eq!(with["subject-digest"], "${{ steps.index.outputs.digest }}");
        assert_eq!(with["push-to-registry"], true);
    }
    let sbom = uses(job, "anchore/sbom-action");
    assert_eq!(sbom.len(), 1);
    assert_eq!(
        sbom[0]["with"]["output-file"],
        uses(job, "actions/attest-sbom")[0]["with"]["sbom-path"]
    );
}

#[test]
fn release_job_publishes_binaries_checksums_and_the_release_action_yml() {
    let w = release();
    let job = &w["jobs"]["release"];
    // It reads only what the image job declares.
    let declared = keys(&w["jobs"]["image"]["outputs"]);
    let text = serde_yaml::to_string(job).unwrap();
    let needs_output = regex::Regex::new(r"needs\.([a-z-]+)\.outputs\.([a-z-]+)").unwrap();
    let mut read = BTreeSet::new();
    for c in needs_output.captures_iter(&text) {
        assert_eq!(&c[1], "image");
        assert!(
            declared.contains(&c[2]),
            "reads undeclared output {}",
            &c[2]
        );
        read.insert(c[2].to_string());
    }
    assert_eq!(read, declared, "the release action.yml needs all three");
    let run = scripts(job);
    for needle in [
        r#"scripts/release.sh action-yml "$IMAGE:$VERSION@$DIGEST" >dist/action.yml"#,
        "scripts/release.sh checksums dist",
        // The release commit and tags (release_commit_and_tags_through_the_rest_api).
        "scripts/release.sh release-commit dist/action.yml",
        "gh release create",
        "--verify-tag",
    ] {
        assert!(run.contains(needle), "the release job runs {needle:?}");
    }
    // The release commit is made from the tagged commit, for the tag that started the run.
    let commit_step = steps(job)
        .iter()
        .find(|s| s["run"] == "scripts/release.sh release-commit dist/action.yml")
        .unwrap();
    assert_eq!(commit_step["env"]["SOURCE"], "${{ github.sha }}");
    assert_eq!(commit_step["env"]["TAG"], "${{ github.ref_name }}");
    assert_eq!(commit_step["env"]["GH_TOKEN"], "${{ github.token }}");
    // action.yml is written before the checksums are, so SHA256SUMS covers it.
    assert!(run.find("action-yml").unwrap() < run.find("checksums dist").unwrap());
    let attest = uses(job, "actions/attest-build-provenance");
    assert_eq!(attest.len(), 1);
    assert_eq!(attest[0]["with"]["subject-path"], "dist/bakery-linux-*");
    let downloads: Vec<&str> = uses(job, "actions/download-artifact")
        .iter()
        .map(|s| {
            s["with"]["pattern"]
                .as_str()
                .or(s["with"]["name"].as_str())
                .unwrap()
        })
        .collect();
    assert_eq!(downloads, ["binary-*", "sbom"]);
    // Secrets and tokens reach scripts through the environment only.
    for s in steps(job) {
        if let Some(script) = s["run"].as_str() {
            assert!(
                !script.contains("${{"),
                "an expression inside a script: {script}"
            );
        }
    }
}

fn release_sh(args: &[&str], dir: &Path) -> Output {
    Command::new(repo().join("scripts/release.sh"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const DIGEST: &str = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

#[test]
fn meta_names_the_version_the_major_and_the_image() {
    let out = release_sh(&["meta", "v1.12.3", "Some-Org/Bakery"], &repo());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "version=1.12.3\nmajor=1\nimage=ghcr.io/some-org/bakery\n"
    );
    let out = release_sh(&["meta", "v1.2.3", "not a repository"], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn the_release_action_yml_runs_the_published_image() {
    let image_ref = format!("ghcr.io/some-org/bakery:1.2.3@{DIGEST}");
    let out = release_sh(&["action-yml", &image_ref], &repo());
    assert!(out.status.success(), "{}", text(&out));
    let released: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let mut main: Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("action.yml")).unwrap()).unwrap();
    // main builds from source (`uses: ./` in ci.yml); a release pulls the image.
    assert_eq!(main["runs"]["image"], "Dockerfile");
    assert_eq!(
        released["runs"]["image"].as_str().unwrap(),
        format!("docker://{image_ref}")
    );
    // Nothing else differs: inputs, outputs, args, the post step.
    main["runs"]["image"] = released["runs"]["image"].clone();
    assert_eq!(released, main);
}

#[test]
fn the_release_action_yml_refuses_what_it_cannot_pin() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in [
        "ghcr.io/some-org/bakery:1.2.3".to_string(), // a tag alone can be moved
        format!("ghcr.io/some-org/bakery@{DIGEST}"), // no version
        format!("docker://ghcr.io/some-org/bakery:1.2.3@{DIGEST}"),
        format!("ghcr.io/Some-Org/bakery:1.2.3@{DIGEST}"),
        "ghcr.io/some-org/bakery:1.2.3@sha256:abc".to_string(),
        format!("ghcr.io/some-org/bakery:1.2.3@{DIGEST}\n  evil: true"),
    ] {
        let out = release_sh(&["action-yml", &bad], &repo());
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains("is not REGISTRY/NAME:VERSION@sha256:DIGEST"),
            "{}",
            text(&out)
        );
    }
    // An action.yml that is already a release's (or changed shape) is refused, not rewritten.
    let good = format!("ghcr.io/some-org/bakery:1.2.3@{DIGEST}");
    let once = release_sh(&["action-yml", &good], &repo());
    let released = tmp.path().join("action.yml");
    std::fs::write(&released, &once.stdout).unwrap();
    let out = release_sh(&["action-yml", &good, released.to_str().unwrap()], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("expected one line '  image: Dockerfile' under 'runs:', found 0"),
        "{}",
        text(&out)
    );
}

#[test]
fn checksums_cover_every_file_and_catch_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path();
    std::fs::write(dist.join("bakery-linux-amd64"), b"amd64").unwrap();
    std::fs::write(dist.join("bakery-linux-arm64"), b"arm64").unwrap();
    std::fs::write(dist.join("action.yml"), b"name: Bakery\n").unwrap();
    let out = release_sh(&["checksums", dist.to_str().unwrap()], &repo());
    assert!(out.status.success(), "{}", text(&out));
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let names: BTreeSet<&str> = sums
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        names,
        ["action.yml", "bakery-linux-amd64", "bakery-linux-arm64"]
            .into_iter()
            .collect()
    );
    let check = |dir: &Path| {
        Command::new("sha256sum")
            .args(["--check", "--quiet", "SHA256SUMS"])
            .current_dir(dir)
            .output()
            .unwrap()
    };
    assert!(check(dist).status.success());
    std::fs::write(dist.join("bakery-linux-arm64"), b"tampered").unwrap();
    assert!(!check(dist).status.success());
    let empty = tempfile::tempdir().unwrap();
    let out = release_sh(&["checksums", empty.path().to_str().unwrap()], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// What of the release can run here: the static musl binary for this machine, the image's
/// final stage built from it with podman, the download named as the release names it, its
/// size in the summary, the release's action.yml pinned to the image's digest, and checksums
/// over both. (In the dev profile, for minutes instead of the release's `dist` profile's
/// hour: `scripts/release.sh dry-run --full` builds that, and arm64, by hand.)
#[test]
fn dry_run_of_the_release_build() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("release");
    let out = release_sh(&["dry-run", out_dir.to_str().unwrap()], &repo());
    assert!(out.status.success(), "{}", text(&out));
    let dist = out_dir.join("dist");
    let binary = dist.join("bakery-linux-amd64");
    let elf = Command::new("readelf")
        .arg("-l")
        .arg(&binary)
        .output()
        .unwrap();
    assert!(elf.status.success());
    assert!(
        !String::from_utf8_lossy(&elf.stdout).contains("INTERP"),
        "the release binary is static"
    );
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("bakery "));
    let check = Command::new("sha256sum")
        .args(["--check", "SHA256SUMS"])
        .current_dir(&dist)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let checked = String::from_utf8_lossy(&check.stdout);
    assert!(checked.contains("bakery-linux-amd64: OK"), "{checked}");
    assert!(checked.contains("action.yml: OK"), "{checked}");
    // The build job's summary line, with the binary's size as it is on disk.
    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).unwrap();
    let size = std::fs::metadata(&binary).unwrap().len();
    assert!(
        summary.starts_with(&format!("bakery-linux-amd64: {size} bytes; image ")),
        "{summary}"
    );
    let action: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dist.join("action.yml")).unwrap()).unwrap();
    let image = action["runs"]["image"].as_str().unwrap();
    let digest = image
        .strip_prefix("docker://ghcr.io/bakery-dry-run/bakery:0.0.0@")
        .unwrap_or_else(|| panic!("{image}"));
    // The digest is the local image's, and that image runs the binary.
    let inspect = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Digest}}"])
        .arg("localhost/bakery-action:test")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), digest);
}

/// What the dry run cannot build is refused before anything is compiled: an architecture
/// scripts/container-test.sh has no way to build here, and stray arguments.
#[test]
fn dry_run_refuses_what_it_cannot_build() {
    let out = Command::new(repo().join("scripts/container-test.sh"))
        .arg("build")
        .env("BAKERY_CONTAINER_ARCH", "s390x")
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot build BAKERY_CONTAINER_ARCH='s390x'"),
        "{}",
        text(&out)
    );
    let out = release_sh(&["dry-run", "one", "two"], &repo());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("usage: scripts/release.sh dry-run [--full] [OUT_DIR]"),
        "{}",
        text(&out)
    );
}

/// scripts/release.sh release-commit against a stand-in for GitHub's REST API on 127.0.0.1
/// that checks every request against GitHub's REST description and keeps the references.
#[test]
fn release_commit_and_tags_through_the_rest_api() {
    let server = FakeGitHub::start(Arc::new(Spec::load()), Behaviour::Writable);
    let source = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c";
    server.set_ref("heads/main", source);
    server.set_ref("tags/v1.2.3", source); // the tag a maintainer pushed
    let tmp = tempfile::tempdir().unwrap();
    let action_yml = tmp.path().join("action.yml");
    let image_ref = format!("ghcr.io/some-org/bakery:1.2.3@{DIGEST}");
    std::fs::write(
        &action_yml,
        release_sh(&["action-yml", &image_ref], &repo()).stdout,
    )
    .unwrap();
    let run = |tag: &str, source: &str| {
        Command::new(repo().join("scripts/release.sh"))
            .args(["release-commit", action_yml.to_str().unwrap()])
            .env("GITHUB_API_URL", &server.url)
            .env("GH_TOKEN", "ghs_release_token")
            .env("REPOSITORY", "some-org/bakery")
            .env("SOURCE", source)
            .env("TAG", tag)
            .current_dir(repo())
            .output()
            .unwrap()
    };
    let out = run("v1.2.3", source);
    assert!(out.status.success(), "{}", text(&out));
    let commit = String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("commit=")
        .unwrap_or_else(|| panic!("{}", text(&out)))
        .to_string();
    let requests = server.requests();
    for r in &requests {
        assert!(
            r.problems.is_empty(),
            "{} {}: {:?}",
            r.method,
            r.path,
            r.problems
        );
        assert_eq!(r.authorization.as_deref(), Some("Bearer ghs_release_token"));
    }
    let ops: Vec<&str> = requests
        .iter()
        .map(|r| r.operation.as_deref().unwrap_or("?"))
        .collect();
    assert_eq!(
        ops,
        [
            "git/get-commit",
            "git/create-blob",
            "git/create-tree",
            "git/create-commit",
            "git/get-ref", // tags/v1.2.3 exists: moved
            "git/update-ref",
            "git/get-ref", // tags/v1 does not yet: created
            "git/create-ref",
        ]
    );
    assert_eq!(
        requests[0].path,
        format!("/repos/some-org/bakery/git/commits/{source}")
    );
    // The blob is the release's action.yml, byte for byte.
    let blob = requests[1].body.as_ref().unwrap();
    assert_eq!(
        blob["content"].as_str().unwrap(),
        std::fs::read_to_string(&action_yml).unwrap()
    );
    assert_eq!(blob["encoding"], "utf-8");
    // The tree is the tagged commit's with action.yml replaced, nothing else.
    let tree = requests[2].body.as_ref().unwrap();
    assert_eq!(tree["base_tree"].as_str().unwrap(), tree_of(source));
    let entries = tree["tree"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["path"], "action.yml");
    assert_eq!(entries[0]["mode"], "100644");
    assert_eq!(entries[0]["type"], "blob");
    // The commit's only parent is the tagged commit.
    let made = requests[3].body.as_ref().unwrap();
    assert_eq!(made["parents"], serde_json::json!([source]));
    assert!(made["message"]
        .as_str()
        .unwrap()
        .starts_with("Release v1.2.3"));
    assert_eq!(requests[5].body.as_ref().unwrap()["force"], true);
    let refs = server.refs();
    assert_ne!(commit, source);
    assert_eq!(refs["tags/v1.2.3"], commit);
    assert_eq!(refs["tags/v1"], commit);
    assert_eq!(refs["heads/main"], source, "main is not touched");

    // The next minor release moves the major tag instead of creating it.
    let next = "2a3b4c5d6e7f80912a3b4c5d6e7f80912a3b4c5d";
    server.set_ref("tags/v1.3.0", next);
    let out = run("v1.3.0", next);
    assert!(out.status.success(), "{}", text(&out));
    let second = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("commit=")
        .to_string();
    let refs = server.refs();
    assert_eq!(refs["tags/v1.3.0"], second);
    assert_eq!(refs["tags/v1"], second);
    assert_eq!(refs["tags/v1.2.3"], commit, "an older release stays put");
    let ops: Vec<String> = server.requests()[8..]
        .iter()
        .map(|r| r.operation.clone().unwrap_or_default())
        .collect();
    assert_eq!(ops.iter().filter(|o| *o == "git/update-ref").count(), 2);
    assert!(!ops.iter().any(|o| o == "git/create-ref"));

    // What it will not start with: each refused before any request.
    let before = server.requests().len();
    for (tag, source, says) in [
        ("v1.3", next, "is not vMAJOR.MINOR.PATCH"),
        ("v1.3.1", "main", "is not a commit SHA"),
    ] {
        let out = run(tag, source);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(says), "{}", text(&out));
    }
    assert_eq!(server.requests().len(), before);
}
