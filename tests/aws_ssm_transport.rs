//! The SSM transport against a stub of SSM Run Command on 127.0.0.1 that speaks the service's
//! JSON protocol and answers in the shapes the AWS API reference documents
//! (SendCommand, GetCommandInvocation, DescribeInstanceInformation, CancelCommand).
//!
//! moto's `send_command` always succeeds with empty output, so nothing here uses moto: the stub
//! runs each command with `sh` on this machine (the wrapper, the read-back of long output and
//! uploads are real shell), and cuts the output at the service's documented limits of 24,000
//! stdout and 8,000 stderr characters. Scenarios add what the service does that moto never
//! does: InvocationDoesNotExist right after SendCommand, InProgress for a while, a command that
//! never finishes.
#![cfg(feature = "aws")]

mod aws_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_common::{Request, Response, Server};
use bakery::cloud::aws::Clients;
use bakery::transport::ssm::{SsmOptions, SsmTransport};
use bakery::transport::{Stream, Transport};

#[derive(Default)]
struct Stub {
    /// command id -> (exit, stdout, stderr, polls)
    invocations: Mutex<HashMap<String, (i32, String, String, u32)>>,
    /// Polls answered InProgress before the result (InvocationDoesNotExist on the first).
    slow_polls: u32,
    /// Never finish.
    hang: bool,
    sent: Mutex<Vec<String>>,
    cancelled: Mutex<u32>,
    online_after: u32,
    described: Mutex<u32>,
}

impl Stub {
    fn handle(&self, req: &Request) -> Option<Response> {
        let body = req.json();
        match req.action().as_str() {
            "ssm:SendCommand" => {
                assert_eq!(body["DocumentName"], "AWS-RunShellScript");
                assert!(body["Parameters"]["executionTimeout"][0].is_string());
                let script = body["Parameters"]["commands"][0]
                    .as_str()
                    .unwrap()
                    .to_string();
                self.sent.lock().unwrap().push(script.clone());
                let out = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(&script)
                    .output()
                    .unwrap();
                let id = format!("cmd-{}", self.sent.lock().unwrap().len());
                self.invocations.lock().unwrap().insert(
                    id.clone(),
                    (
                        out.status.code().unwrap_or(-1),
                        String::from_utf8_lossy(&out.stdout).into(),
                        String::from_utf8_lossy(&out.stderr).into(),
                        0,
                    ),
                );
                Some(Response::json(
                    200,
                    serde_json::json!({"Command": {"CommandId": id, "Status": "Pending",
                        "DocumentName": "AWS-RunShellScript", "InstanceIds": body["InstanceIds"]}}),
                ))
            }
            "ssm:GetCommandInvocation" => {
                let id = body["CommandId"].as_str().unwrap();
                let mut inv = self.invocations.lock().unwrap();
                let e = inv.get_mut(id).unwrap();
                e.3 += 1;
                if e.3 == 1 && self.slow_polls > 0 {
                    return Some(Response::ssm_error(
                        400,
                        "InvocationDoesNotExist",
                        "An error occurred (InvocationDoesNotExist)",
                    ));
                }
                if self.hang || e.3 <= self.slow_polls {
                    return Some(Response::json(
                        200,
                        serde_json::json!({"CommandId": id, "InstanceId": body["InstanceId"],
                            "Status": "InProgress", "StatusDetails": "InProgress", "ResponseCode": -1,
                            "StandardOutputContent": "", "StandardErrorContent": ""}),
                    ));
                }
                let status = if e.0 == 0 { "Success" } else { "Failed" };
                let out: String = e.1.chars().take(24_000).collect();
                let err: String = e.2.chars().take(8_000).collect();
                Some(Response::json(
                    200,
                    serde_json::json!({"CommandId": id, "InstanceId": body["InstanceId"],
                        "Status": status, "StatusDetails": status, "ResponseCode": e.0,
                        "StandardOutputContent": out, "StandardErrorContent": err,
                        "StandardOutputUrl": "", "StandardErrorUrl": ""}),
                ))
            }
            "ssm:CancelCommand" => {
                *self.cancelled.lock().unwrap() += 1;
                Some(Response::json(200, serde_json::json!({})))
            }
            "ssm:DescribeInstanceInformation" => {
                let mut n = self.described.lock().unwrap();
                *n += 1;
                let list = if *n > self.online_after {
                    serde_json::json!([{"InstanceId": "i-0123456789abcdef0", "PingStatus": "Online"}])
                } else {
                    serde_json::json!([])
                };
                Some(Response::json(
                    200,
                    serde_json::json!({"InstanceInformationList": list}),
                ))
            }
            _ => None,
        }
    }
}

fn transport(stub: Arc<Stub>) -> (SsmTransport, Server) {
    let s = stub.clone();
    let server = Server::start(None, Arc::new(move |r| s.handle(r)), Arc::new(|_, _| {}));
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let clients = Clients::load(Some("us-east-1"), Some(&server.url())).unwrap();
    let t = SsmTransport::new(
        clients.rt.clone(),
        clients.ssm.clone(),
        "i-0123456789abcdef0",
        SsmOptions {
            first_poll: Duration::from_millis(10),
            max_poll: Duration::from_millis(50),
            grace: Duration::from_secs(0),
        },
    );
    (t, server)
}

#[test]
fn exit_code_stdout_and_stderr_come_back_after_polling() {
    let stub = Arc::new(Stub {
        slow_polls: 3,
        ..Default::default()
    });
    let (t, _server) = transport(stub.clone());
    let mut lines = Vec::new();
    let out = t
        .exec(
            "echo one; echo two; echo oops >&2; exit 7",
            Duration::from_secs(30),
            &mut |s, l| lines.push((s, l.to_string())),
        )
        .unwrap();
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.stdout, "one\ntwo\n");
    assert_eq!(out.stderr, "oops\n");
    assert_eq!(
        lines,
        vec![
            (Stream::Stdout, "one".to_string()),
            (Stream::Stdout, "two".to_string()),
            (Stream::Stderr, "oops".to_string())
        ]
    );
}

#[test]
fn output_beyond_the_service_limits_is_detected_and_read_back_whole() {
    let stub = Arc::new(Stub::default());
    let (t, _server) = transport(stub.clone());
    // 100,000 bytes of stdout and 20,000 of stderr: the service returns 24,000 and 8,000.
    let cmd = "i=0; while [ $i -lt 2000 ]; do printf '%049d\\n' $i; i=$((i+1)); done; \
               head -c 20000 /dev/zero | tr '\\0' e >&2";
    let out = t.run_cmd(cmd);
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout.len(), 100_000);
    assert!(out.stdout.ends_with(&format!("{:049}\n", 1999)));
    assert_eq!(out.stderr.len(), 20_000);
    let sent = stub.sent.lock().unwrap().clone();
    assert!(
        sent.len() > 2,
        "long output is read back with further commands: {}",
        sent.len()
    );
    assert!(
        sent.last().unwrap().starts_with("rm -f "),
        "and removed after"
    );
}

trait RunCmd {
    fn run_cmd(&self, cmd: &str) -> bakery::transport::ExecOutput;
}
impl RunCmd for SsmTransport {
    fn run_cmd(&self, cmd: &str) -> bakery::transport::ExecOutput {
        self.exec(cmd, Duration::from_secs(60), &mut |_, _| {})
            .unwrap()
    }
}

#[test]
fn a_command_that_never_finishes_times_out_and_is_cancelled() {
    let stub = Arc::new(Stub {
        hang: true,
        ..Default::default()
    });
    let (t, _server) = transport(stub.clone());
    let err = t
        .exec("true", Duration::from_secs(1), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains("InProgress"), "{err}");
    assert_eq!(*stub.cancelled.lock().unwrap(), 1);
}

#[test]
fn uploads_arrive_byte_for_byte_with_their_mode() {
    let stub = Arc::new(Stub::default());
    let (t, _server) = transport(stub.clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/file.bin");
    let contents: Vec<u8> = (0..60_000u32).map(|i| (i * 7 % 256) as u8).collect();
    t.upload(&contents, path.to_str().unwrap(), 0o640).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), contents);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(
        stub.sent.lock().unwrap().len() >= 3,
        "60 kB travel in several commands"
    );
}

#[test]
fn waits_until_the_instance_is_managed() {
    let stub = Arc::new(Stub {
        online_after: 1,
        ..Default::default()
    });
    let (t, _server) = transport(stub.clone());
    t.wait_managed(Duration::from_secs(60)).unwrap();
    assert_eq!(*stub.described.lock().unwrap(), 2);
}
