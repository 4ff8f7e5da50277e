//! The check engine on a real Debian 12 guest: every resource type, passing, failing and
//! erroring, in Bakery's own format and as Goss files (one of them a template rendered with a
//! vars file), through `bakery run --no-promote`. An Ansible playbook in the bake also installs
//! a newer kernel than the base image's (the security archive's; the base is bootstrapped from
//! the release alone), and the probe must run it: local images boot through their own boot
//! loader.
//!
//! Each check id starts with the verdict it must get: `pass-`, `fail-`, `error-` or `skip-`.

mod common;

use common::*;

const PIPELINE: &str = r#"
provider: local
source:
  local: debian-12
build:
  provisioners:
    # A playbook installs a newer kernel than the base's: the probe must boot it.
    - ansible:
        playbook: KERNEL_PLAYBOOK
    - shell:
        environment:
          DEBIAN_FRONTEND: noninteractive
        inline:
          - apt-get install -y -qq --no-install-recommends nginx-light
          - systemctl enable nginx
          - groupadd -g 4242 bakers
          - useradd -m -s /bin/bash -G adm,bakers tester
          - mkdir -p /srv/data
          - printf 'hello\nworld\n' > /srv/data/greeting.txt
          - chown tester:bakers /srv/data/greeting.txt
          - chmod 0640 /srv/data/greeting.txt
          - ln -s /srv/data/greeting.txt /srv/greeting
          - echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-bakery.conf
          - echo '<h1>Baked by Bakery</h1>' > /var/www/html/index.html
image:
  name: "engine-{{timestamp}}"
verify:
  suites:
    - SMOKE
    - every-type.yml
    - broken.yml
    - goss.yaml
    - goss: goss-templated.yaml
      vars: goss-vars.yaml
  junit: results/junit.xml
"#;

const EVERY_TYPE: &str = r#"
name: every-type
checks:
  - {id: pass-command, command: {run: "uname -s", stdout: Linux, stderr: ""}}
  - {id: pass-kernel-of-the-bake, command: {run: 'uname -r; test "$(uname -r)" = "$(cat /etc/bakery-new-kernel)"', stdout: ["/^[0-9]+\\.[0-9]+\\./"]}}
  - {id: fail-kernel-of-the-base, command: {run: 'test "$(uname -r)" = "$(cat /etc/bakery-base-kernel)"'}}
  - {id: pass-booted-by-grub, file: {path: /proc/cmdline, contents: ["/^BOOT_IMAGE=.boot.vmlinuz-[0-9]/", console=ttyS0]}}
  - {id: pass-service, service: {name: nginx, running: true, enabled: true}}
  - {id: pass-service-ssh, service: {name: ssh, running: true, enabled: true}}
  - {id: pass-file, file: {path: /srv/data/greeting.txt, mode: "0640", owner: tester, group: bakers, filetype: file, size: 12, contents: [hello, "/^world$/", "!nope"], sha256: 4a1e67f2fe1d1cc7b31d0ca2ec441da4778203a036a77da10344c85e24ff0f92}}
  - {id: pass-file-dir, file: {path: /srv/data, filetype: directory, uid: 0, gid: 0}}
  - {id: pass-file-link, file: {path: /srv/greeting, filetype: symlink, linked-to: /srv/data/greeting.txt}}
  - {id: pass-file-absent, file: {path: /srv/nothing, exists: false}}
  - {id: pass-cloud-init-schema, file: {path: /var/log/cloud-init.log, contents: ["!Invalid cloud-config"]}}
  - {id: pass-package, package: {name: nginx-light, version: {semver: ">=1.22"}}}
  - {id: pass-package-absent, package: {name: apache2, installed: false}}
  - {id: pass-port, port: {port: 80, ip: {contains: 0.0.0.0}}}
  - {id: pass-port-ssh6, port: {port: 22, protocol: tcp6}}
  - {id: pass-http, eventually: 30s, http: {url: "http://127.0.0.1/", status: 200, body: {contains: Baked by Bakery}, headers: {contain-element: {regex: "^Server: nginx"}}}}
  - {id: pass-user, user: {name: tester, shell: /bin/bash, home: /home/tester, groups: {contains-all: [adm, bakers]}}}
  - {id: pass-user-root, user: {name: root, uid: 0}}
  - {id: pass-group, group: {name: bakers, gid: 4242}}
  - {id: pass-process, process: {comm: nginx, count: {ge: 2}}}
  - {id: pass-process-sshd, process: {comm: sshd}}
  - {id: pass-kernel-param, kernel-param: {name: net.ipv4.ip_forward, value: 1}}
  - {id: pass-mount, mount: {path: /, exists: true, opts: [rw], usage: {lt: 95}}}
  - {id: pass-mount-proc, mount: {path: /proc, filesystem: proc}}
  - {id: pass-interface, interface: {name: lo, addrs: {contains: 127.0.0.1/8}, mtu: 65536}}
  - {id: pass-interface-eth0, interface: {name: eth0, exists: true}}
  - {id: pass-dns, dns: {name: localhost, addrs: {contain-element: {regex: "^(127\\.0\\.0\\.1|::1)$"}}}}
  - {id: pass-addr, addr: {address: "tcp://127.0.0.1:22"}}
  - {id: pass-addr-closed, addr: {address: "tcp://127.0.0.1:1", reachable: false, timeout: 2s}}
  - {id: pass-matching, matching: {content: "1.22.1", matches: {semver: ">=1.22, <2"}}}
  - {id: pass-clock, clock: {max-offset: 5s}}
  - {id: skip-later, skip: not yet, command: {run: "false"}}
"#;

const BROKEN: &str = r#"
name: broken
checks:
  - {id: fail-command, command: {run: "echo oops; exit 3"}}
  - {id: fail-service, service: {name: nginx, enabled: false}}
  - {id: fail-file, file: {path: /srv/data/greeting.txt, mode: "0644"}}
  - {id: fail-package, package: {name: no-such-package}}
  - {id: fail-port, port: {port: 8080}}
  - {id: fail-http, http: {url: "http://127.0.0.1:22/", status: 200}}
  - {id: fail-user, user: {name: nobody-at-all}}
  - {id: fail-group, group: {name: bakers, gid: 1}}
  - {id: fail-process, process: {comm: no-such-daemon}}
  - {id: fail-kernel-param, kernel-param: {name: kernel.no_such_param, value: 1}}
  - {id: fail-mount, mount: {path: /srv/data}}
  - {id: fail-interface, interface: {name: eth9}}
  - {id: fail-dns, dns: {name: no-such-host.invalid}}
  - {id: fail-addr, addr: {address: "tcp://127.0.0.1:9", timeout: 2s}}
  - {id: fail-clock-ntp, clock: {synchronized: true}}
  - {id: fail-retried, retry: {attempts: 2, interval: 100ms}, file: {path: /srv/never}}
  - {id: error-timeout, timeout: 2s, command: {run: "sleep 30"}}
  - {id: error-dig, dns: {name: example.org, server: 10.0.2.3, type: MX}}
"#;

const GOSS: &str = r#"
file:
  /etc/passwd:
    exists: true
    mode: "0644"
    owner: root
    filetype: file
    contents:
      - "root:x:0:0"
package:
  nginx-light:
    installed: true
service:
  nginx:
    enabled: true
    running: true
port:
  tcp:80:
    listening: true
    ip:
      - 0.0.0.0
user:
  tester:
    exists: true
    groups:
      - bakers
command:
  "echo hi":
    exit-status: 0
    stdout:
      - hi
  "exit 1":
    exit-status: 0
kernel-param:
  kernel.ostype:
    value: Linux
"#;

/// A Goss template as CIS and image-builder content writes them: one file, several targets,
/// the differences in a vars file; with the Goss features real files use (matchers on yes/no
/// attributes, a Unix socket, a local address, `as-reader`, a mount named without a path, a
/// top-level key that Goss ignores).
const GOSS_TEMPLATED: &str = r#"
{{- /* Rendered with goss-vars.yaml, as `goss --vars goss-vars.yaml validate` renders it. */ -}}
file:
{{- range .Vars.files }}
  {{ .path }}:
    exists: true
    mode: "{{ .mode }}"
    owner: {{ $.Vars.owner }}
{{- end }}
  /srv/nothing:
    exists: {or: [true, false]}
package:
  {{ .Vars.web.package }}:
    installed: {not: false}
{{- range .Vars.required_packages }}
  {{ . }}:
    installed: true
{{- end }}
service:
  {{ .Vars.web.service }}:
    enabled: true
    running: {or: [true]}
{{- if .Vars.web.tls }}
  certbot.timer:
    enabled: true
{{- end }}
user:
  {{ .Vars.user }}:
    exists: {equal: true}
    groups: [{{ .Vars.group }}]
addr:
  unix:///run/systemd/journal/stdout:
    reachable: true
  tcp://127.0.0.1:80:
    local-address: 127.0.0.1
    reachable: true
    timeout: 5000
matching:
  greeting-lines:
    content: {{ .Vars.greeting | quote }}
    as-reader: true
    matches: ["/^hello$/", "world", "!{{ toUpper .Vars.user }}"]
mount:
  swap:
    exists: false
kernel-param:
  net.ipv4.ip_forward:
    value: "{{ .Vars.ip_forward }}"
command:
  echo {{ .Vars.user | toUpper }}:
    exit-status: 0
    stdout: ["{{ toUpper .Vars.user }}"]
# Not a Goss resource type: Goss ignores it; Bakery warns and ignores it.
environment:
  TARGET: {{ .Vars.target }}
"#;

const GOSS_VARS: &str = r#"
target: debian-12
owner: tester
user: tester
group: bakers
files:
  - {path: /srv/data/greeting.txt, mode: "0640"}
web: {package: nginx-light, service: nginx, tls: false}
required_packages: [openssh-server, apache2]
greeting: "hello\nworld\n"
ip_forward: 1
"#;

#[test]
fn every_resource_type_on_a_real_guest() {
    let _vm = vm_lock();
    let data = data_dir("engine");
    let dir = tempfile::tempdir().unwrap();
    let smoke = repo().join("test-suites/smoke.yml");
    let pipeline_text = PIPELINE
        .replace("SMOKE", &smoke.display().to_string())
        .replace(
            "KERNEL_PLAYBOOK",
            &repo()
                .join("tests/ansible/kernel.yml")
                .display()
                .to_string(),
        );
    for (name, text) in [
        ("bakery.yml", pipeline_text.as_str()),
        ("every-type.yml", EVERY_TYPE),
        ("broken.yml", BROKEN),
        ("goss.yaml", GOSS),
        ("goss-templated.yaml", GOSS_TEMPLATED),
        ("goss-vars.yaml", GOSS_VARS),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let pipeline = dir.path().join("bakery.yml");
    let out = run(bakery(&data)
        .env("PATH", ansible_path())
        .args(["run", "--no-promote", "-f"])
        .arg(&pipeline));
    assert_eq!(
        out.status.code(),
        Some(1),
        "failing checks must fail the gate"
    );

    let json = std::fs::read_to_string(dir.path().join("results/junit.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut seen = 0;
    let running_kernel = check_output(&doc, "every-type", "pass-kernel-of-the-bake");
    for suite in doc["suites"].as_array().unwrap() {
        for r in suite["results"].as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            let status = r["status"].as_str().unwrap();
            let want = match id.split('-').next().unwrap() {
                "pass" => "passed",
                "fail" => "failed",
                "error" => "error",
                "skip" => "skipped",
                _ => match id {
                    // The Goss files' checks pass but for these.
                    "command:exit 1" | "package:apache2" => "failed",
                    _ => "passed",
                },
            };
            assert_eq!(status, want, "{id}: {} / {}", r["message"], r["output"]);
            if status == "failed" {
                assert!(
                    r["expected"].is_string() && r["actual"].is_string(),
                    "{id}: {r}"
                );
            }
            seen += 1;
        }
    }
    let templated = bakery::suites::load_goss_with(
        &dir.path().join("goss-templated.yaml"),
        &bakery::suites::GossVars {
            files: vec![dir.path().join("goss-vars.yaml")],
            inline: None,
        },
    )
    .unwrap();
    assert_eq!(templated.checks.len(), 13, "{:#?}", templated.checks);
    let expected: usize = ["every-type.yml", "broken.yml", "goss.yaml"]
        .iter()
        .map(|f| dir.path().join(f))
        .chain([smoke.clone()])
        .map(|f| bakery::suites::load_suite(&f).unwrap().checks.len())
        .sum::<usize>()
        + templated.checks.len();
    assert_eq!(seen, expected, "every check has a result");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("goss-templated.yaml:")
            && stderr.contains("`environment` is not a Goss resource type"),
        "{stderr}"
    );
    assert_eq!(doc["verdict"]["passed"], false);

    let xml = std::fs::read_to_string(dir.path().join("results/junit.xml")).unwrap();
    let parsed = roxmltree::Document::parse(&xml).expect("the JUnit file is well-formed XML");
    let cases = parsed
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases, seen);

    let image = doc["properties"]["image.id"]
        .as_str()
        .expect("the results name the image")
        .to_string();
    // The probe ran the kernel the image's manifest says it boots: the one the bake installed
    // (through the image's own GRUB), not the base image's.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("images").join(&image).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        running_kernel.as_deref(),
        manifest["kernel"]["boots"].as_str(),
        "uname -r on the probe against the manifest's kernel: {}",
        manifest["kernel"]
    );
    // And `bakery diff` of the base and the baked image shows the kernel change, from the
    // kernel the base booted (the probe's `/etc/bakery-base-kernel`) to the new one.
    let base = base_image(&data);
    let out = run(bakery(&data)
        .current_dir(dir.path())
        .args(["diff", "--json", &base, &image]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(diff["kernel"]["to"], manifest["kernel"]["boots"], "{diff}");
    assert_ne!(diff["kernel"]["from"], diff["kernel"]["to"], "{diff}");
    assert!(
        diff["added"].as_array().unwrap().iter().any(|p| p["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("linux-image-6."))),
        "the new kernel's package is added: {diff}"
    );

    // A Goss user's first try, on the image just baked: no pipeline file, the local
    // provider's defaults, the same templated file and vars, the same verdicts.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run(bakery(&data)
        .current_dir(elsewhere.path())
        .args(["verify", "--image", &image, "--goss"])
        .arg(dir.path().join("goss-templated.yaml"))
        .arg("--vars")
        .arg(dir.path().join("goss-vars.yaml")));
    assert_eq!(out.status.code(), Some(1), "package:apache2 fails the gate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "no pipeline file (bakery.yml) here: verifying with the local provider's defaults"
        ),
        "{stderr}"
    );
    let json = std::fs::read_to_string(elsewhere.path().join("bakery-results/junit.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let results = doc["suites"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), templated.checks.len());
    for r in results {
        let id = r["id"].as_str().unwrap();
        let want = if id == "package:apache2" {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(
            r["status"], want,
            "{id}: {} / {}",
            r["message"], r["output"]
        );
    }
    assert_nothing_left(&data);
}
