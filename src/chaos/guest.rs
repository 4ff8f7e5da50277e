//! Faults made inside the probe by shell scripts sent over the [`Transport`] (SSH or SSM alike).
//!
//! Every fault is three scripts: `inject`, `rollback` (idempotent: running it twice, or after
//! the dead-man's switch ran it, changes nothing) and `verify` (exits 0 only when nothing of the
//! fault is left). Before injecting, the rollback is written to the probe and a transient systemd
//! timer, the dead-man's switch, is armed to run it at the fault's deadline: a Bakery killed
//! outright still leaves no fault behind. Network faults leave the control channel alone: the
//! probe's SSH replies and the metadata service always, and when Bakery comes through SSM, what
//! the agent needs to reach its endpoints (outgoing HTTPS and DNS queries, and the replies to
//! them). `dns-failure` and `metadata-unavailable` are the exceptions by design: over SSM the
//! agent keeps its open connections and cached credentials through a short fault, and the
//! dead-man's switch ends the fault if Bakery can no longer reach the probe.
//!
//! The scripts use what a minimal systemd Linux has: a POSIX shell, coreutils, util-linux,
//! iproute2 and systemd; `blackhole-port` needs nftables or iptables. A missing tool is an
//! error that names it, never a pass.

use std::time::Duration;

use super::model::FaultKind;
use crate::transport::shell_quote;

/// Where a fault's files live on the probe.
pub const STATE_DIR: &str = "/var/lib/bakery-chaos";
/// The line a script prints before exiting with [`MISSING_TOOL_EXIT`] when a tool is missing.
pub const MISSING_TOOL: &str = "bakery-chaos: missing tool:";
/// The exit status of a script that found a tool missing.
pub const MISSING_TOOL_EXIT: i32 = 127;

/// What the network faults must leave alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// The SSH port Bakery reaches the probe on (its replies are spared).
    pub ssh_port: u16,
    /// Whether Bakery reaches the probe through a cloud API over HTTPS (SSM): the agent's
    /// outgoing HTTPS and DNS queries are spared, and so are the replies they get.
    pub https: bool,
}

/// The scripts of one in-guest fault.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A unique tag (`bakery-chaos-…`), used in unit, file and table names.
    pub tag: String,
    /// Checks the tools the fault needs (run before anything else).
    pub preflight: String,
    /// Arms the dead-man's switch; the rollback must already be on the probe.
    pub arm: String,
    pub inject: String,
    pub rollback: String,
    pub verify: String,
    /// Where the rollback script is written.
    pub rollback_path: String,
    /// The fault is over once injected and leaves nothing on the probe to undo (a signal
    /// sent): no rollback is written, no dead-man's switch armed, and none is run.
    pub leaves_nothing: bool,
}

/// The plan for an in-guest fault, or `None` for a fault made through the provider.
/// `deadline` is when the dead-man's switch fires, counted from arming it.
pub fn plan(kind: &FaultKind, tag: &str, deadline: Duration, control: Control) -> Option<Plan> {
    let dir = format!("{STATE_DIR}/{tag}");
    let unit = tag.to_string();
    let load = format!("{unit}-load.service");
    let secs = deadline.as_secs().max(1);
    let mut tools: Vec<&str> = vec!["systemd-run", "systemctl"];
    let (inject, rollback, verify): (String, String, String) = match kind {
        FaultKind::KillProcess(k) => {
            // A signal leaves nothing to undo: no dead-man's switch, so no systemd-run.
            tools.clear();
            if k.service.is_some() {
                tools.push("systemctl");
            }
            let sig = k.signal.trim_start_matches("SIG").to_string();
            let inject = match (&k.name, &k.service) {
                (Some(name), _) => format!(
                    r#"# Every process named {name}, except this script and the shells above it.
mine=" $$ "; p=$$
while [ "$p" -gt 1 ] 2>/dev/null; do
  p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status 2>/dev/null); [ -n "$p" ] || break; mine="$mine$p "
done
pids=""
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = {q} ] || continue
  pid=${{d#/proc/}}; case "$mine" in *" $pid "*) continue;; esac
  pids="$pids $pid"
done
[ -n "$pids" ] || {{ echo "no process named {name} is running" >&2; exit 3; }}
kill -s {sig} $pids
echo "sent SIG{sig} to{{$pids}}" | tr -d '{{}}'
"#,
                    q = shell_quote(name)
                ),
                (None, Some(service)) => {
                    let u = unit_name(service);
                    format!(
                        r#"pid=$(systemctl show -p MainPID --value {u})
[ "${{pid:-0}}" -gt 0 ] || {{ echo "{u} has no main process (is it running?)" >&2; exit 3; }}
kill -s {sig} "$pid"
echo "sent SIG{sig} to $pid, the main process of {u}"
"#,
                        u = shell_quote(&u)
                    )
                }
                (None, None) => unreachable!("validated: kill-process names a process"),
            };
            (inject, ":".to_string(), "true".to_string())
        }
        FaultKind::StopService(s) => {
            let u = shell_quote(&unit_name(&s.name));
            (
                format!(
                    "systemctl cat {u} >/dev/null 2>&1 || {{ echo \"no unit {u} on the probe\" >&2; exit 3; }}\nsystemctl stop {u}\necho stopped {u}\n"
                ),
                format!("systemctl start {u} || true\n"),
                format!("systemctl is-active -q {u} || {{ echo \"{u} is not active\"; exit 1; }}\n"),
            )
        }
        FaultKind::DiskFill(d) => {
            tools.extend(["stat", "fallocate"]);
            let file = format!(
                "{}/.{tag}-fill",
                d.path.trim_end_matches('/').trim_end_matches('/')
            );
            let file = if file.starts_with("//") {
                file[1..].to_string()
            } else {
                file
            };
            let f = shell_quote(&file);
            let p = shell_quote(&d.path);
            (
                format!(
                    r#"set -- $(stat -f -c '%b %f %a %S' {p})
total=$1 free=$2 avail=$3 bs=$4
used=$((total - free)); size=$((used + avail))
want=$((size * {pct} / 100 - used))
[ "$want" -le "$avail" ] || want=$avail
if [ "$want" -le 0 ]; then echo "{p} is already at or above {pct} %"; exit 0; fi
fallocate -l $((want * bs)) {f} 2>/dev/null || dd if=/dev/zero of={f} bs=$bs count=$want 2>/dev/null || true
[ -e {f} ] || {{ echo "could not create {f}" >&2; exit 3; }}
echo "wrote $((want * bs / 1048576)) MiB to {f}"
"#,
                    pct = d.percent
                ),
                format!("rm -f {f}\n"),
                format!("[ ! -e {f} ] || {{ echo \"{f} is still there\"; exit 1; }}\n"),
            )
        }
        FaultKind::CpuStress(s) => {
            tools.push("nproc");
            let workers = s.workers.map_or("$(nproc)".to_string(), |w| w.to_string());
            (
                format!(
                    r#"n={workers}
systemd-run --quiet --collect --unit={load} -p RuntimeMaxSec={secs} /bin/sh -c 'i=0; while [ $i -lt '"$n"' ]; do (while :; do :; done) & i=$((i+1)); done; wait'
echo "$n busy workers in {load}"
"#
                ),
                stop_unit(&load),
                unit_gone(&load),
            )
        }
        FaultKind::MemoryStress(m) => {
            // Memory held in a private tmpfs: the kernel cannot reclaim it without swap, so the
            // pressure stays until the rollback, and the OOM killer must pick a process.
            // (`fallocate` is used where the probe has it, and is not required.)
            tools.extend(["mount", "umount", "head", "stat", "nproc", "cut", "tr"]);
            let mem = format!("{dir}/mem");
            (
                format!(
                    r#"kb=$(sed -n 's/^MemAvailable:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo)
bytes=$((kb * {pct} / 100 * 1024))
mkdir -p {mem}
mount -t tmpfs -o size=$bytes,mode=0700 bakery-chaos {mem}
# One file per CPU (at most 4), filled side by side: the kernel zeroes each page it commits,
# and that is the slow part. fallocate commits the pages in one call; copying zeros through
# `head` is the fallback.
n=$(nproc); [ "$n" -le 4 ] || n=4
part=$((bytes / n / 4096 * 4096)); i=0
began=$(cut -d' ' -f1 /proc/uptime | tr -d .)
while [ $i -lt $n ]; do
  fallocate -l $part {mem}/fill$i 2>/dev/null || head -c $part /dev/zero > {mem}/fill$i &
  i=$((i + 1))
done
wait
took=$(( $(cut -d' ' -f1 /proc/uptime | tr -d .) - began ))
held=0; for f in {mem}/fill*; do held=$((held + $(stat -c %s "$f"))); done
echo "holding $((held / 1048576)) MiB of $((kb / 1024)) MiB available (filled in $((took / 100)).$((took / 10 % 10)) s)"
"#,
                    pct = m.percent
                ),
                format!(
                    "if grep -q ' {mem} ' /proc/self/mountinfo; then rm -f {mem}/fill*; umount {mem}; fi\n"
                ),
                format!(
                    "! grep -q ' {mem} ' /proc/self/mountinfo || {{ echo 'the memory is still held'; exit 1; }}\n"
                ),
            )
        }
        FaultKind::IoStress(s) => {
            tools.extend(["dd", "nproc"]);
            let workers = s.workers.map_or("$(nproc)".to_string(), |w| w.to_string());
            let files = format!("/var/tmp/.{tag}-io");
            (
                format!(
                    r#"n={workers}
systemd-run --quiet --collect --unit={load} -p RuntimeMaxSec={secs} /bin/sh -c 'i=0; while [ $i -lt '"$n"' ]; do (while :; do dd if=/dev/zero of={files}-$i bs=1M count=32 conv=fsync 2>/dev/null; done) & i=$((i+1)); done; wait'
echo "$n writers in {load}"
"#
                ),
                format!("{}rm -f {files}-*\n", stop_unit(&load)),
                format!(
                    "{}! ls {files}-* >/dev/null 2>&1 || {{ echo 'write files are left'; exit 1; }}\n",
                    unit_gone(&load)
                ),
            )
        }
        FaultKind::NetworkLatency(_) | FaultKind::PacketLoss(_) => {
            tools.extend(["tc", "ip"]);
            let (netem, interface) = match kind {
                FaultKind::NetworkLatency(l) => (
                    format!(
                        "delay {}ms{}",
                        l.delay.0.as_millis(),
                        l.jitter
                            .map(|j| format!(" {}ms", j.0.as_millis()))
                            .unwrap_or_default()
                    ),
                    l.interface.clone(),
                ),
                FaultKind::PacketLoss(p) => (format!("loss {}%", p.percent), p.interface.clone()),
                _ => unreachable!(),
            };
            let dev = match interface {
                Some(i) => shell_quote(&i),
                None => {
                    "$(ip route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1)"
                        .to_string()
                }
            };
            // The control channel's filters, sent to `tc` in two batches (one process each
            // instead of one a filter): those that must hold, and the IPv6 ones, which only
            // hold where the probe has IPv6.
            let filter = |prio: u32, proto: &str, m: &str| {
                format!("filter add dev $dev parent 1: protocol {proto} prio {prio} u32 match {m} flowid 1:1\n")
            };
            let p = control.ssh_port;
            let mut must = filter(1, "ip", &format!("ip sport {p} 0xffff"))
                + &filter(3, "ip", "ip dst 169.254.169.254/32");
            // The metadata service over IPv6 (Nitro instances), where the instance has it.
            let mut may = filter(2, "ipv6", &format!("ip6 sport {p} 0xffff"))
                + &filter(4, "ipv6", "ip6 dst fd00:ec2::254/128");
            if control.https {
                // The SSM agent's way out: HTTPS to the endpoints, and DNS to find them.
                for (prio, port) in [(5, 443), (7, 53)] {
                    must.push_str(&filter(prio, "ip", &format!("ip dport {port} 0xffff")));
                    may.push_str(&filter(
                        prio + 1,
                        "ipv6",
                        &format!("ip6 dport {port} 0xffff"),
                    ));
                }
            }
            let spare = format!(
                "tc -batch - <<BAKERY_TC_END\n{must}BAKERY_TC_END\ntc -force -batch - 2>/dev/null <<BAKERY_TC_END || true\n{may}BAKERY_TC_END\n"
            );
            (
                format!(
                    r#"dev={dev}
[ -n "$dev" ] || {{ echo "no default route: name the interface" >&2; exit 3; }}
echo "$dev" > {dir}/dev
# Everything goes to band 4, which has the fault; the control channel is filtered to band 1.
tc qdisc add dev "$dev" root handle 1: prio bands 4 priomap 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3
{spare}if ! tc qdisc add dev "$dev" parent 1:4 handle 40: netem {netem}; then
  tc qdisc del dev "$dev" root handle 1: 2>/dev/null
  echo "{MISSING_TOOL} the kernel's netem queueing discipline (module sch_netem)"; exit {MISSING_TOOL_EXIT}
fi
echo "netem {netem} on $dev ({spared} spared)"
"#,
                    spared = if control.https {
                        format!(
                            "port {}, the metadata service, outgoing HTTPS and DNS",
                            control.ssh_port
                        )
                    } else {
                        format!("port {} and the metadata service", control.ssh_port)
                    }
                ),
                format!(
                    "dev=$(cat {dir}/dev 2>/dev/null) || exit 0\ntc qdisc show dev \"$dev\" | grep -q '^qdisc prio 1: root' && tc qdisc del dev \"$dev\" root handle 1:\ntrue\n"
                ),
                "for d in $(ls /sys/class/net); do ! tc qdisc show dev \"$d\" | grep -q netem || { echo \"netem is still on $d\"; exit 1; }; done\n"
                    .to_string(),
            )
        }
        FaultKind::BlackholePort(b) => {
            let table = tag.replace('-', "_");
            let proto = &b.protocol;
            let port = b.port;
            // Over SSM, the replies to the agent's HTTPS (or DNS) requests may land on the
            // blackholed port when it is one of the ephemeral ports: they pass.
            let (nft_spare, ipt_spare, spared) = match (control.https, proto.as_str()) {
                (true, "tcp") => (
                    " tcp sport != 443",
                    " ! --sport 443",
                    ", replies from port 443 spared",
                ),
                (true, _) => (
                    " udp sport != 53",
                    " ! --sport 53",
                    ", replies from port 53 spared",
                ),
                (false, _) => ("", "", ""),
            };
            let ipt = format!(
                "INPUT -p {proto} --dport {port}{ipt_spare} -m comment --comment {tag} -j DROP"
            );
            (
                format!(
                    r#"if command -v nft >/dev/null 2>&1; then
  nft add table inet {table}
  nft add chain inet {table} input '{{ type filter hook input priority -10; }}'
  nft add rule inet {table} input {proto} dport {port}{nft_spare} drop
  echo "nftables drops {proto} port {port}{spared}"
elif command -v iptables >/dev/null 2>&1; then
  iptables -I {ipt}
  echo "iptables drops {proto} port {port}{spared}"
else
  echo "{MISSING_TOOL} nft (nftables) or iptables"; exit {MISSING_TOOL_EXIT}
fi
"#
                ),
                format!(
                    "nft delete table inet {table} 2>/dev/null\nwhile iptables -D {ipt} 2>/dev/null; do :; done\ntrue\n"
                ),
                format!(
                    "! nft list table inet {table} >/dev/null 2>&1 || {{ echo 'the nftables table is still there'; exit 1; }}\n! iptables -C {ipt} 2>/dev/null || {{ echo 'the iptables rule is still there'; exit 1; }}\n"
                ),
            )
        }
        FaultKind::DnsFailure(_) => {
            tools.extend(["mount", "umount", "readlink"]);
            (
                format!(
                    r#"target=$(readlink -f /etc/resolv.conf)
echo "$target" > {dir}/target
echo '# bakery chaos: no name servers' > {dir}/resolv.conf
mount --bind {dir}/resolv.conf "$target"
echo "name servers hidden: $target replaced by an empty one"
"#
                ),
                format!(
                    "target=$(cat {dir}/target 2>/dev/null) || exit 0\nwhile grep -q \" $target \" /proc/self/mountinfo; do umount \"$target\" || break; done\ntrue\n"
                ),
                "! grep -q 'resolv.conf' /proc/self/mountinfo || { echo 'a resolv.conf is still mounted over'; exit 1; }\n".to_string(),
            )
        }
        FaultKind::ClockSkew(c) => {
            tools.push("date");
            let o = c.offset;
            (
                format!(
                    r#": > {dir}/stopped
for u in systemd-timesyncd chrony chronyd ntp ntpsec; do
  if systemctl is-active -q $u.service 2>/dev/null; then systemctl stop $u.service; echo $u >> {dir}/stopped; fi
done
echo {o} > {dir}/offset
date -s @$(( $(date +%s) + ({o}) )) >/dev/null
echo "clock moved by {o} s (time sync stopped: $(tr '\n' ' ' < {dir}/stopped))"
"#
                ),
                format!(
                    "if [ -f {dir}/offset ]; then date -s @$(( $(date +%s) - ($(cat {dir}/offset)) )) >/dev/null && rm -f {dir}/offset; fi\nfor u in $(cat {dir}/stopped 2>/dev/null); do systemctl start $u.service || true; done\n: > {dir}/stopped 2>/dev/null\ntrue\n"
                ),
                format!(
                    "[ ! -f {dir}/offset ] || {{ echo 'the clock was not moved back'; exit 1; }}\n"
                ),
            )
        }
        FaultKind::MetadataUnavailable(_) => {
            tools.push("ip");
            (
                "ip route add blackhole 169.254.169.254/32\necho 'routes to 169.254.169.254 dropped'\n"
                    .to_string(),
                "while ip route del blackhole 169.254.169.254/32 2>/dev/null; do :; done\ntrue\n"
                    .to_string(),
                "! ip route show type blackhole | grep -q '^blackhole 169.254.169.254' || { echo 'the blackhole route is still there'; exit 1; }\n"
                    .to_string(),
            )
        }
        _ => return None,
    };
    let rollback_path = format!("{dir}/rollback.sh");
    let leaves_nothing = kind.leaves_nothing();
    let preflight = format!(
        "for t in {}; do command -v $t >/dev/null 2>&1 || {{ echo \"{MISSING_TOOL} $t\"; exit {MISSING_TOOL_EXIT}; }}; done\n[ \"$(id -u)\" = 0 ] || {{ echo 'faults need root on the probe (ssh_user root, or sudo)' >&2; exit 3; }}\n{}",
        tools.join(" "),
        if leaves_nothing { String::new() } else { format!("mkdir -p {dir}\n") }
    );
    let arm = format!(
        "systemd-run --quiet --collect --unit={unit}-deadman --on-active={secs} --timer-property=AccuracySec=1s /bin/sh {rollback_path}\n"
    );
    let rollback = format!(
        "#!/bin/sh\n# Bakery chaos rollback of {tag} ({name}); run by Bakery, or by the {unit}-deadman timer.\n{rollback}\nsystemctl stop {unit}-deadman.timer 2>/dev/null\nrm -rf {dir}\ntrue\n",
        name = kind.name()
    );
    let verify = format!(
        "{verify}\n! systemctl is-active -q {unit}-deadman.timer || {{ echo 'the dead-man timer is still armed'; exit 1; }}\n"
    );
    Some(Plan {
        tag: tag.to_string(),
        leaves_nothing,
        preflight,
        arm,
        inject: format!("set -e\ncd /\n{inject}"),
        rollback,
        verify,
        rollback_path,
    })
}

impl Plan {
    /// One script that readies the fault in a single round trip, in the safe order: the
    /// preflight (only that, for a fault that [leaves nothing](Plan::leaves_nothing)), then
    /// the rollback written to the probe (under a temporary name, moved into
    /// place whole), then the dead-man's switch armed to run it. Exit status 127 with a
    /// [`MISSING_TOOL`] line: a tool is missing; any other failure exits non-zero with the
    /// reason on stderr.
    pub fn prepare(&self) -> String {
        if self.leaves_nothing {
            return self.preflight.clone();
        }
        let part = format!("{}.bakery-part", self.rollback_path);
        let end = format!("BAKERY_ROLLBACK_END_{}", self.tag.replace('-', "_"));
        let mut rollback = self.rollback.clone();
        if !rollback.ends_with('\n') {
            rollback.push('\n');
        }
        format!(
            "{preflight}cat > {part} <<'{end}' || exit 3\n{rollback}{end}\nchmod 0700 {part} && mv -f {part} {path} || exit 3\n{arm} || {{ echo \"arming the dead-man's switch failed\" >&2; exit 4; }}\n",
            preflight = self.preflight,
            path = self.rollback_path,
            arm = self.arm.trim_end(),
        )
    }

    /// [`Plan::prepare`], then the injection, in one round trip. The line
    /// [`INJECT_BEGINS`] separates what the preparation printed from what the injection
    /// printed; without it, the preparation failed with the script's exit status.
    pub fn prepare_and_inject(&self) -> String {
        format!(
            "(\n{prepare}) || exit $?\necho {INJECT_BEGINS}\n{inject}",
            prepare = self.prepare(),
            inject = self.inject
        )
    }

    /// Runs the rollback (again: it is idempotent) and then checks that nothing of the fault
    /// is left, in one round trip. Exit status 0: nothing is left; 5: the rollback itself
    /// failed (its stderr follows); anything else: `verify` found the fault still there and
    /// says what on stdout.
    pub fn roll_back_and_verify(&self) -> String {
        format!(
            "if [ -f {p} ]; then /bin/sh {p} || exit 5; fi\n{verify}",
            p = self.rollback_path,
            verify = self.verify
        )
    }
}

/// `name` with `.service` added unless it has a unit suffix.
fn unit_name(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

fn stop_unit(unit: &str) -> String {
    format!("systemctl stop {unit} 2>/dev/null\n")
}

fn unit_gone(unit: &str) -> String {
    format!("! systemctl is-active -q {unit} || {{ echo '{unit} still runs'; exit 1; }}\n")
}

/// The line between the preparation's and the injection's output in
/// [`Plan::prepare_and_inject`].
pub const INJECT_BEGINS: &str = "BAKERY_CHAOS_INJECT_BEGINS";

/// The tool a script reported missing, from its output.
pub fn missing_tool(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(MISSING_TOOL))
        .map(|t| t.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::model::*;

    const CONTROL: Control = Control {
        ssh_port: 22,
        https: false,
    };

    #[test]
    fn provider_faults_have_no_script() {
        assert!(plan(&FaultKind::Reboot, "t", Duration::from_secs(5), CONTROL).is_none());
    }

    /// A disk-fill of `/` tagged `bakery-chaos-ab12`, its switch set to 40 s.
    fn disk_fill_plan() -> Plan {
        plan(
            &FaultKind::DiskFill(DiskFill {
                path: "/".into(),
                percent: 95,
            }),
            "bakery-chaos-ab12",
            Duration::from_secs(40),
            CONTROL,
        )
        .unwrap()
    }

    #[test]
    fn the_rollback_disarms_the_dead_man_and_the_arming_runs_the_rollback() {
        let p = disk_fill_plan();
        assert_eq!(
            p.rollback_path,
            "/var/lib/bakery-chaos/bakery-chaos-ab12/rollback.sh"
        );
        assert!(p.arm.contains("--on-active=40"), "{}", p.arm);
        assert!(p.arm.contains(&p.rollback_path));
        assert!(
            p.rollback.contains("rm -f /.bakery-chaos-ab12-fill"),
            "{}",
            p.rollback
        );
        assert!(p
            .rollback
            .contains("systemctl stop bakery-chaos-ab12-deadman.timer"));
        assert!(p.verify.contains("[ ! -e /.bakery-chaos-ab12-fill ]"));
        assert!(p.preflight.contains("fallocate"), "{}", p.preflight);
    }

    /// Runs `plan.prepare_and_inject()` with the host's `sh`.
    fn run_here(plan: &Plan) -> std::process::Output {
        std::process::Command::new("sh")
            .args(["-c", &plan.prepare_and_inject()])
            .output()
            .unwrap()
    }

    #[test]
    fn the_injection_runs_after_the_marker_and_only_when_the_preparation_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        let rollback_path = dir.path().join("rollback.sh").display().to_string();
        let ran = dir.path().join("injected").display().to_string();
        let plan = |preflight: &str, arm: &str| Plan {
            tag: "bakery-chaos-t1".into(),
            preflight: preflight.into(),
            arm: arm.into(),
            inject: format!("touch {ran}\necho injected\n"),
            rollback: ": undo\n".into(),
            verify: "true\n".into(),
            rollback_path: rollback_path.clone(),
            leaves_nothing: false,
        };

        let ok = run_here(&plan("", "true"));
        assert!(ok.status.success(), "{ok:?}");
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert_eq!(stdout, format!("{INJECT_BEGINS}\ninjected\n"));
        assert_eq!(std::fs::read_to_string(&rollback_path).unwrap(), ": undo\n");
        std::fs::remove_file(&ran).unwrap();

        // A failed preflight: its exit status, no marker, nothing injected.
        let missing = run_here(&plan(
            &format!("echo '{MISSING_TOOL}nft'; exit 2\n"),
            "true",
        ));
        assert_eq!(missing.status.code(), Some(2), "{missing:?}");
        let stdout = String::from_utf8_lossy(&missing.stdout);
        assert!(!stdout.contains(INJECT_BEGINS), "{stdout}");
        assert_eq!(missing_tool(&stdout).as_deref(), Some("nft"));
        assert!(!std::path::Path::new(&ran).exists());

        // A switch that does not arm: exit 4, nothing injected.
        let unarmed = run_here(&plan("", "false"));
        assert_eq!(unarmed.status.code(), Some(4), "{unarmed:?}");
        assert!(!String::from_utf8_lossy(&unarmed.stdout).contains(INJECT_BEGINS));
        assert!(!std::path::Path::new(&ran).exists());
    }

    #[test]
    fn a_signal_leaves_nothing_so_no_rollback_is_written_and_no_switch_armed() {
        let kill = |name: Option<&str>, service: Option<&str>| {
            plan(
                &FaultKind::KillProcess(KillProcess {
                    name: name.map(str::to_string),
                    service: service.map(str::to_string),
                    signal: "KILL".into(),
                }),
                "bakery-chaos-k1",
                Duration::from_secs(40),
                CONTROL,
            )
            .unwrap()
        };
        let by_name = kill(Some("bakery-no-such-process"), None);
        assert!(by_name.leaves_nothing);
        let script = by_name.prepare_and_inject();
        assert!(!script.contains("systemd-run"), "{script}");
        assert!(!script.contains("rollback.sh"), "{script}");
        assert!(!script.contains("mkdir"), "{script}");
        // Run here (as root or not): no process of that name, so the injection says so, after
        // a preparation that only checked the user.
        let out = run_here(&by_name);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains(INJECT_BEGINS) {
            assert_eq!(out.status.code(), Some(3), "{out:?}");
            assert!(
                stderr.contains("no process named bakery-no-such-process"),
                "{stderr}"
            );
        } else {
            assert!(stderr.contains("faults need root"), "{stderr}");
        }
        // By service, systemctl is the one tool it needs.
        let by_service = kill(None, Some("nginx"));
        assert!(
            by_service.preflight.contains("for t in systemctl;"),
            "{}",
            by_service.preflight
        );
        // Every other in-guest fault writes its rollback and arms the switch.
        assert!(!disk_fill_plan().leaves_nothing);
        assert!(disk_fill_plan().prepare().contains("systemd-run"));
    }

    #[test]
    fn one_script_writes_the_rollback_whole_and_arms_the_switch_after_it() {
        let p = disk_fill_plan();
        let script = p.prepare();
        let at = |needle: &str| {
            script
                .find(needle)
                .unwrap_or_else(|| panic!("no {needle} in {script}"))
        };
        // The here-document carries the rollback byte for byte.
        let open = "<<'BAKERY_ROLLBACK_END_bakery_chaos_ab12' || exit 3\n";
        let body_at = at(open) + open.len();
        let body_len = script[body_at..]
            .find("\nBAKERY_ROLLBACK_END_bakery_chaos_ab12\n")
            .unwrap();
        assert_eq!(&script[body_at..=body_at + body_len], p.rollback);
        assert!(at("command -v") < at("cat > "));
        assert!(at("mv -f ") < at("systemd-run --quiet"), "{script}");
        let syntax = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{syntax:?}\n{script}");

        let undo = p.roll_back_and_verify();
        let ran = undo
            .find("/bin/sh /var/lib/bakery-chaos/bakery-chaos-ab12/rollback.sh || exit 5")
            .expect(&undo);
        let checked = undo.find("[ ! -e /.bakery-chaos-ab12-fill ]").expect(&undo);
        assert!(ran < checked, "{undo}");
        let syntax = std::process::Command::new("sh")
            .args(["-n", "-c", &undo])
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{syntax:?}\n{undo}");
    }

    #[test]
    fn network_faults_spare_the_control_channel() {
        let loss = FaultKind::PacketLoss(PacketLoss {
            percent: 20,
            interface: None,
        });
        let p = plan(
            &loss,
            "t",
            Duration::from_secs(5),
            Control {
                ssh_port: 2222,
                https: true,
            },
        )
        .unwrap();
        assert!(
            p.inject.contains("match ip sport 2222 0xffff flowid 1:1"),
            "{}",
            p.inject
        );
        assert!(p.inject.contains("169.254.169.254/32 flowid 1:1"));
        assert!(p.inject.contains("fd00:ec2::254/128 flowid 1:1"));
        assert!(p.inject.contains("netem loss 20%"));
        assert!(p.inject.contains("outgoing HTTPS and DNS spared"));
        let p = plan(&loss, "t", Duration::from_secs(5), CONTROL).unwrap();
        assert!(!p.inject.contains("dport 443"), "{}", p.inject);
        assert!(!p.inject.contains("dport 53"), "{}", p.inject);
    }

    /// The tc filters of an inject script that send packets to the spared band, as
    /// (protocol, match, whether the filter may fail): the lines of its two `tc -batch`
    /// here-documents, the second run with `-force` and allowed to fail.
    fn spared(inject: &str) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        let mut batch: Option<bool> = None;
        for l in inject.lines() {
            if l.starts_with("tc -batch - <<BAKERY_TC_END") {
                batch = Some(false);
            } else if l.starts_with("tc -force -batch - 2>/dev/null <<BAKERY_TC_END || true") {
                batch = Some(true);
            } else if l == "BAKERY_TC_END" {
                batch = None;
            } else if let Some(may_fail) = batch {
                assert!(l.starts_with("filter add dev $dev parent 1: "), "{l}");
                assert!(l.ends_with(" flowid 1:1"), "{l}");
                let word = |after: &str| {
                    l.split(after)
                        .nth(1)
                        .unwrap()
                        .split(' ')
                        .next()
                        .unwrap()
                        .to_string()
                };
                let m = l.split(" u32 match ").nth(1).unwrap();
                out.push((
                    word(" protocol "),
                    m.split(" flowid").next().unwrap().to_string(),
                    may_fail,
                ));
            }
        }
        assert!(batch.is_none(), "an unterminated batch in {inject}");
        out
    }

    #[test]
    fn over_ssm_the_agents_https_and_dns_leave_by_the_spared_band_on_both_ip_versions() {
        let latency = FaultKind::NetworkLatency(Latency {
            delay: crate::config::HumanDuration(Duration::from_millis(200)),
            jitter: None,
            interface: Some("ens5".into()),
        });
        let ssm = Control {
            ssh_port: 22,
            https: true,
        };
        let p = plan(&latency, "t", Duration::from_secs(5), ssm).unwrap();
        assert!(p.inject.starts_with("set -e\n"), "{}", p.inject);
        assert!(p.inject.contains("dev=ens5\n"), "{}", p.inject);
        let got = spared(&p.inject);
        for want in [
            ("ip", "ip sport 22 0xffff"),
            ("ipv6", "ip6 sport 22 0xffff"),
            ("ip", "ip dst 169.254.169.254/32"),
            ("ipv6", "ip6 dst fd00:ec2::254/128"),
            ("ip", "ip dport 443 0xffff"),
            ("ipv6", "ip6 dport 443 0xffff"),
            ("ip", "ip dport 53 0xffff"),
            ("ipv6", "ip6 dport 53 0xffff"),
        ] {
            assert!(
                got.iter().any(|g| g.0 == want.0 && g.1 == want.1),
                "{want:?} not in {got:?}"
            );
        }
        // Every filter has its own priority, and the IPv6 ones may fail (no IPv6) under
        // `set -e` without stopping the script; the IPv4 ones may not.
        let filters: Vec<&str> = p
            .inject
            .lines()
            .filter(|l| l.starts_with("filter add"))
            .collect();
        assert_eq!(filters.len(), got.len());
        let prios: Vec<&str> = filters
            .iter()
            .map(|l| l.split(" prio ").nth(1).unwrap().split(' ').next().unwrap())
            .collect();
        let mut unique = prios.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), prios.len(), "{prios:?}");
        for (proto, m, may_fail) in &got {
            assert_eq!(proto == "ipv6", *may_fail, "{proto} {m}");
        }
        let syntax = std::process::Command::new("sh")
            .args(["-n", "-c", &p.inject])
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{syntax:?}\n{}", p.inject);
        // Everything else goes through the fault, which the rollback removes whole.
        assert!(p.inject.contains("priomap 3 3 3 3"));
        assert!(p.inject.contains("parent 1:4 handle 40: netem delay 200ms"));
        assert!(p
            .rollback
            .contains("tc qdisc del dev \"$dev\" root handle 1:"));
    }

    #[test]
    fn over_ssm_a_blackholed_port_still_lets_the_agents_replies_in() {
        let hole = |protocol: &str, https: bool| {
            plan(
                &FaultKind::BlackholePort(Blackhole {
                    port: 40000,
                    protocol: protocol.into(),
                }),
                "bakery-chaos-bh1",
                Duration::from_secs(5),
                Control {
                    ssh_port: 22,
                    https,
                },
            )
            .unwrap()
        };
        let p = hole("tcp", true);
        assert!(
            p.inject.contains(
                "nft add rule inet bakery_chaos_bh1 input tcp dport 40000 tcp sport != 443 drop"
            ),
            "{}",
            p.inject
        );
        let rule = "INPUT -p tcp --dport 40000 ! --sport 443 -m comment --comment bakery-chaos-bh1 -j DROP";
        // Inserted, deleted and checked for with the very same rule.
        assert!(
            p.inject.contains(&format!("iptables -I {rule}\n")),
            "{}",
            p.inject
        );
        assert!(
            p.rollback.contains(&format!("iptables -D {rule} ")),
            "{}",
            p.rollback
        );
        assert!(
            p.verify.contains(&format!("iptables -C {rule} ")),
            "{}",
            p.verify
        );

        let p = hole("udp", true);
        assert!(
            p.inject.contains("udp dport 40000 udp sport != 53 drop"),
            "{}",
            p.inject
        );
        assert!(p
            .inject
            .contains("-p udp --dport 40000 ! --sport 53 -m comment"));

        // Over SSH nothing but the port is matched (port 22 itself is refused by the model).
        let p = hole("tcp", false);
        assert!(
            p.inject.contains("input tcp dport 40000 drop"),
            "{}",
            p.inject
        );
        assert!(p.rollback.contains(
            "iptables -D INPUT -p tcp --dport 40000 -m comment --comment bakery-chaos-bh1 -j DROP"
        ));
        assert!(!p.inject.contains("sport"), "{}", p.inject);
    }

    #[test]
    fn a_missing_tool_is_read_back_by_name() {
        assert_eq!(
            missing_tool("x\nbakery-chaos: missing tool: nft (nftables) or iptables\n").as_deref(),
            Some("nft (nftables) or iptables")
        );
        assert_eq!(missing_tool("all fine"), None);
    }
}
