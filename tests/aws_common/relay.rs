//! Run Command for instances that stand for a real guest: every script is relayed over SSH to
//! that guest and runs there as the SSM agent would run it, and the service's answers are
//! built from what really happened on the guest.
//!
//! What the relay does as the service and its agent do (AWS Systems Manager API reference,
//! SendCommand, GetCommandInvocation, CancelCommand, DescribeInstanceInformation):
//! - SendCommand accepts `AWS-RunShellScript` only, joins the `commands` lines into one script,
//!   checks `executionTimeout` (1 to 172800 seconds, 3600 when absent) and `TimeoutSeconds`
//!   (30 to 2592000), and answers at once with the command `Pending`.
//! - The script is written to a file in a directory of its own on the guest and run as root
//!   with `sh`, in a session of its own, under the execution timeout; the directory goes
//!   afterwards.
//! - GetCommandInvocation: `InvocationDoesNotExist` on the first poll (the invocation appears a
//!   moment after SendCommand returns), `InProgress` with response code -1 while the script
//!   runs, then `Success` or `Failed` with the exit status as the response code, or `TimedOut`
//!   (`ExecutionTimedOut`) past the execution timeout. Output is cut at the documented 24,000
//!   characters of stdout and 8,000 of stderr.
//! - CancelCommand ends the script's whole session on the guest; the invocation ends
//!   `Cancelled`.
//! - DescribeInstanceInformation reports the instance `Online` only while the guest answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bakery::transport::Transport;
use base64::Engine;

use super::{rand_u32, truncate, Request, Response};

/// Where scripts are written on the guest (the agent's orchestration directory).
pub const WORK: &str = "/var/lib/ssm-stand-in";

/// One SendCommand the relay received.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Instant,
    pub command_id: String,
    pub instance: String,
    pub script: String,
    pub execution_timeout: u64,
}

/// The instances that are real guests, and their invocations.
#[derive(Default)]
pub struct Relay {
    guests: Mutex<HashMap<String, Arc<dyn Transport>>>,
    invocations: Mutex<HashMap<String, Arc<Invocation>>>,
    /// Every SendCommand for a relayed instance, in order.
    pub sent: Mutex<Vec<Sent>>,
    /// Every CancelCommand for a relayed command, by command id.
    pub cancelled: Mutex<Vec<String>>,
}

struct Invocation {
    instance: String,
    polls: AtomicU32,
    cancelled: AtomicBool,
    state: Mutex<State>,
}

#[derive(Clone)]
enum State {
    Running,
    Done {
        code: i32,
        stdout: String,
        stderr: String,
        timed_out: bool,
    },
    /// The guest could not be reached to run the script.
    Undeliverable(String),
}

impl Relay {
    /// From now on, Run Command for `instance` runs on the guest behind `guest`.
    pub fn add(&self, instance: &str, guest: Arc<dyn Transport>) {
        self.guests
            .lock()
            .unwrap()
            .insert(instance.to_string(), guest);
    }

    /// The SendCommands received so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn guest(&self, instance: &str) -> Option<Arc<dyn Transport>> {
        self.guests.lock().unwrap().get(instance).cloned()
    }

    /// Answers a Run Command action about a relayed instance; `None` for anything else.
    pub fn handle(&self, req: &Request) -> Option<Response> {
        let body = req.json();
        match req.action().as_str() {
            "ssm:SendCommand" => {
                let ids: Vec<String> = body["InstanceIds"]
                    .as_array()?
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let [instance] = ids.as_slice() else {
                    return None;
                };
                let guest = self.guest(instance)?;
                Some(self.send(instance, guest, &body))
            }
            "ssm:GetCommandInvocation" => {
                let id = body["CommandId"].as_str()?;
                let inv = self.invocations.lock().unwrap().get(id).cloned()?;
                if body["InstanceId"].as_str() != Some(inv.instance.as_str())
                    || inv.polls.fetch_add(1, Ordering::SeqCst) == 0
                {
                    return Some(Response::ssm_error(
                        400,
                        "InvocationDoesNotExist",
                        "An error occurred (InvocationDoesNotExist) when calling the GetCommandInvocation operation",
                    ));
                }
                Some(Response::json(200, invocation_json(id, &inv)))
            }
            "ssm:CancelCommand" => {
                let id = body["CommandId"].as_str()?;
                let inv = self.invocations.lock().unwrap().get(id).cloned()?;
                self.cancelled.lock().unwrap().push(id.to_string());
                inv.cancelled.store(true, Ordering::SeqCst);
                if let Some(guest) = self.guest(&inv.instance) {
                    // The script's session: its shell and everything it started in it.
                    let _ = guest.run(
                        &format!("kill -TERM -- -$(cat {WORK}/{id}/pid) 2>/dev/null; true"),
                        Duration::from_secs(15),
                    );
                }
                Some(Response::json(200, serde_json::json!({})))
            }
            "ssm:DescribeInstanceInformation" => {
                let ids: Vec<String> = body["Filters"]
                    .as_array()?
                    .iter()
                    .filter(|f| f["Key"] == "InstanceIds")
                    .flat_map(|f| f["Values"].as_array().cloned().unwrap_or_default())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let guests: Vec<(String, Arc<dyn Transport>)> = ids
                    .iter()
                    .map(|id| self.guest(id).map(|g| (id.clone(), g)))
                    .collect::<Option<_>>()?;
                let list: Vec<serde_json::Value> = guests
                    .iter()
                    .map(|(id, g)| {
                        let up = g
                            .run("true", Duration::from_secs(5))
                            .is_ok_and(|o| o.exit_code == 0);
                        serde_json::json!({"InstanceId": id,
                            "PingStatus": if up { "Online" } else { "ConnectionLost" },
                            "PlatformType": "Linux", "PlatformName": "Debian GNU/Linux",
                            "ResourceType": "EC2Instance", "AgentVersion": "3.3.0.0"})
                    })
                    .collect();
                Some(Response::json(
                    200,
                    serde_json::json!({"InstanceInformationList": list}),
                ))
            }
            _ => None,
        }
    }

    fn send(
        &self,
        instance: &str,
        guest: Arc<dyn Transport>,
        body: &serde_json::Value,
    ) -> Response {
        if body["DocumentName"] != "AWS-RunShellScript" {
            return Response::ssm_error(
                400,
                "InvalidDocument",
                "only AWS-RunShellScript is stood in for",
            );
        }
        let Some(lines) = body["Parameters"]["commands"].as_array() else {
            return Response::ssm_error(400, "InvalidParameters", "commands is required");
        };
        let script = lines
            .iter()
            .filter_map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let execution_timeout = match body["Parameters"]["executionTimeout"].as_array() {
            None => 3600,
            Some(v) => match v
                .first()
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse().ok())
            {
                Some(t @ 1..=172_800) => t,
                _ => {
                    return Response::ssm_error(
                        400,
                        "InvalidParameters",
                        "executionTimeout must be a number of seconds from 1 to 172800",
                    )
                }
            },
        };
        if let Some(t) = body["TimeoutSeconds"].as_u64() {
            if !(30..=2_592_000).contains(&t) {
                return Response::ssm_error(
                    400,
                    "ValidationException",
                    "TimeoutSeconds must be from 30 to 2592000",
                );
            }
        }
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            rand_u32() & 0xffff_ffff,
            rand_u32() & 0xffff,
            rand_u32() & 0xfff,
            rand_u32() & 0xfff,
            rand_u32()
        );
        let inv = Arc::new(Invocation {
            instance: instance.to_string(),
            polls: AtomicU32::new(0),
            cancelled: AtomicBool::new(false),
            state: Mutex::new(State::Running),
        });
        self.invocations
            .lock()
            .unwrap()
            .insert(id.clone(), inv.clone());
        self.sent.lock().unwrap().push(Sent {
            at: Instant::now(),
            command_id: id.clone(),
            instance: instance.to_string(),
            script: script.clone(),
            execution_timeout,
        });
        let cid = id.clone();
        std::thread::spawn(move || {
            let state = run_on_guest(guest.as_ref(), &cid, &script, execution_timeout);
            *inv.state.lock().unwrap() = state;
        });
        let mut command = serde_json::json!({"CommandId": id,
            "DocumentName": "AWS-RunShellScript", "InstanceIds": [instance],
            "Parameters": body["Parameters"], "Status": "Pending", "StatusDetails": "Pending",
            "TargetCount": 1, "CompletedCount": 0, "ErrorCount": 0});
        for echoed in ["Comment", "TimeoutSeconds"] {
            if !body[echoed].is_null() {
                command[echoed] = body[echoed].clone();
            }
        }
        Response::json(200, serde_json::json!({ "Command": command }))
    }
}

/// Runs `script` on the guest as the agent runs it; returns how it ended.
fn run_on_guest(guest: &dyn Transport, id: &str, script: &str, timeout: u64) -> State {
    let dir = format!("{WORK}/{id}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(script);
    let started = Instant::now();
    // One SSH command: the script written to its file, then run in a session of its own (what
    // CancelCommand ends, `setsid -w` waits for it) under the execution timeout.
    let run = format!(
        "mkdir -p {dir} && cd {dir} && printf '%s' '{b64}' | base64 -d > _script.sh && \
         setsid -w sh -c 'echo $$ > pid; exec timeout {timeout} sh ./_script.sh </dev/null'; \
         rc=$?; cd / && rm -rf {dir}; exit $rc"
    );
    match guest.run(&run, Duration::from_secs(timeout + 30)) {
        Ok(out) => State::Done {
            timed_out: out.exit_code == 124 && started.elapsed() >= Duration::from_secs(timeout),
            code: out.exit_code,
            stdout: out.stdout,
            stderr: out.stderr,
        },
        Err(e) => State::Undeliverable(e.to_string()),
    }
}

fn invocation_json(id: &str, inv: &Invocation) -> serde_json::Value {
    let state = inv.state.lock().unwrap().clone();
    let cancelled = inv.cancelled.load(Ordering::SeqCst);
    let (status, details, code, stdout, stderr) = match state {
        State::Running if cancelled => {
            ("Cancelling", "Cancelling", -1, String::new(), String::new())
        }
        State::Running => ("InProgress", "InProgress", -1, String::new(), String::new()),
        State::Done { .. } if cancelled => {
            ("Cancelled", "Cancelled", -1, String::new(), String::new())
        }
        State::Done {
            timed_out: true,
            stdout,
            stderr,
            ..
        } => ("TimedOut", "ExecutionTimedOut", -1, stdout, stderr),
        State::Done {
            code,
            stdout,
            stderr,
            ..
        } => {
            let s = if code == 0 { "Success" } else { "Failed" };
            (s, s, code, stdout, stderr)
        }
        State::Undeliverable(why) => ("Failed", "Undeliverable", -1, String::new(), why),
    };
    serde_json::json!({"CommandId": id, "InstanceId": inv.instance,
        "DocumentName": "AWS-RunShellScript", "PluginName": "aws:runShellScript",
        "Status": status, "StatusDetails": details, "ResponseCode": code,
        "StandardOutputContent": truncate(&stdout, 24_000),
        "StandardErrorContent": truncate(&stderr, 8_000),
        "StandardOutputUrl": "", "StandardErrorUrl": ""})
}
