//! The AWS test harness: moto's server on 127.0.0.1, and a small HTTP server in front of it
//! that can fail the Nth call of an action, send a signal between calls, and stand in for the
//! parts of SSM Run Command that moto only pretends to do.
//!
//! What is real and what is a stand-in:
//! - EC2 and SSM Parameter Store calls go to moto unchanged (unless a fault is injected).
//! - moto's `send_command` always "succeeds" with empty output and it has no
//!   `describe_instance_information`, so Run Command (SendCommand, GetCommandInvocation,
//!   DescribeInstanceInformation, CancelCommand) is answered here, in the documented JSON shape.
//!   For pipeline runs, each instance's commands execute in a copy-on-write chroot of this
//!   machine's own root file system (overlayfs in a private mount namespace); an image carries
//!   its builder's changes to the probes launched from it. So a gate's verdict rests on what the
//!   provisioners really did in that chroot — not on moto — but the OS is this machine's, not the
//!   image's.
//! - An instance can instead stand for a real guest ([`relay`]): its commands run on that guest
//!   over SSH, and every answer comes from what happened there.

#![allow(dead_code)]

pub mod images;
pub mod relay;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `bakery` binary built for this test, run in the repository root with its data in
/// `data`, talking to `e` with moto's credentials, and nothing from the caller's environment
/// that would point it elsewhere or change its output.
pub fn bakery(e: &Endpoint, data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bakery"));
    cmd.current_dir(repo())
        .env("BAKERY_DATA_DIR", data)
        .env("BAKERY_AWS_ENDPOINT_URL", e.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("RUST_LOG");
    cmd
}

/// Prints a run's stdout and stderr (shown when the test fails).
pub fn show(out: &Output) {
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
}

/// `text` as a pipeline file next to the AWS example (so its relative paths keep working),
/// named `<prefix>…yml`; removed when dropped.
pub fn example_copy(prefix: &str, text: &str) -> tempfile::TempPath {
    let f = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".yml")
        .tempfile_in(repo().join("examples/aws"))
        .unwrap();
    std::fs::write(f.path(), text).unwrap();
    f.into_temp_path()
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests that use moto run one at a time (they share one server and reset it).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static MOTO: OnceLock<SocketAddr> = OnceLock::new();

/// moto's server, started once per test binary; it dies with the test process.
pub fn moto() -> SocketAddr {
    *MOTO.get_or_init(|| {
        let script = repo().join("scripts/moto.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("install")
            .output()
            .expect("scripts/moto.sh runs");
        assert!(
            out.status.success(),
            "installing moto failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let port = free_port();
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{port}.log"));
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        // The thread that starts moto lives as long as the process: moto gets SIGKILL when it
        // ends (PR_SET_PDEATHSIG follows the starting thread).
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let file = std::fs::File::create(&log).unwrap();
            let mut cmd = Command::new(&bin);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ENABLE_AMI_VALIDATION", "true")
                .env("MOTO_ENABLE_KEYPAIR_VALIDATION", "true")
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file);
            // SAFETY: prctl only sets a flag on the child.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("moto_server starts");
            tx.send(child.id()).unwrap();
            let mut child = child;
            let _ = child.wait();
        });
        let _pid = rx.recv().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        for _ in 0..300 {
            if TcpStream::connect(addr).is_ok() {
                return addr;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto did not listen on {addr} within 30 s; see {}",
            log_path.display()
        );
    })
}

/// Wipes moto's state.
pub fn reset_moto() {
    let r = http(moto(), "POST", "/moto-api/reset", &[], b"");
    assert_eq!(
        r.status,
        200,
        "moto reset: {}",
        String::from_utf8_lossy(&r.body)
    );
}

// ---- a minimal HTTP/1.1 server and client ---------------------------------------------------

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `ec2:RunInstances`, `ssm:SendCommand`, or "" for other requests.
    pub fn action(&self) -> String {
        if let Some(t) = self.header("x-amz-target") {
            if let Some(op) = t.strip_prefix("AmazonSSM.") {
                return format!("ssm:{op}");
            }
            return t.to_string();
        }
        let body = String::from_utf8_lossy(&self.body);
        body.split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(|a| format!("ec2:{a}"))
            .unwrap_or_default()
    }

    /// A form field of a query-protocol request (`InstanceId.1`).
    pub fn form(&self, key: &str) -> Option<String> {
        let body = String::from_utf8_lossy(&self.body).to_string();
        body.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| url_decode(v))
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 2;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to send or that came back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
            body: value.to_string().into_bytes(),
        }
    }

    /// An SSM-style (JSON protocol) error.
    pub fn ssm_error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            serde_json::json!({"__type": code, "message": message}),
        )
    }

    /// An EC2-style (query protocol) error.
    pub fn ec2_error(status: u16, code: &str, message: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/xml".into())],
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
            )
            .into_bytes(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A start line, headers and a body.
type Message = (String, Vec<(String, String)>, Vec<u8>);

fn read_message(r: &mut BufReader<TcpStream>) -> Option<Message> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    } else if !first.starts_with("GET") && !first.starts_with("POST") {
        // A response without a length runs to the end of the connection.
        r.read_to_end(&mut body).ok()?;
    }
    Some((first.trim_end().to_string(), headers, body))
}

/// A plain HTTP request (used for moto's own API and for forwarding).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let lk = k.to_ascii_lowercase();
        if matches!(
            lk.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            continue;
        }
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut r = BufReader::new(s);
    let (status_line, headers, body) = read_message(&mut r).expect("a response");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        headers,
        body,
    }
}

/// Decides about a request before it is forwarded: `Some` answers it here.
pub type Handler = Arc<dyn Fn(&Request) -> Option<Response> + Send + Sync>;
/// Sees each forwarded request with moto's response.
pub type Observer = Arc<dyn Fn(&Request, &Response) + Send + Sync>;

/// An HTTP server on 127.0.0.1 that answers through `handler` or forwards to `upstream`.
pub struct Server {
    pub addr: SocketAddr,
    /// Every action received, in order.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(upstream: Option<SocketAddr>, handler: Handler, observer: Observer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (handler, observer, log) = (handler.clone(), observer.clone(), log2.clone());
                std::thread::spawn(move || serve(conn, upstream, handler, observer, log));
            }
        });
        Server { addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn actions(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(
    conn: TcpStream,
    upstream: Option<SocketAddr>,
    handler: Handler,
    observer: Observer,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    while let Some((line, headers, body)) = read_message(&mut reader) {
        let mut parts = line.split_whitespace();
        let req = Request {
            method: parts.next().unwrap_or("").to_string(),
            path: parts.next().unwrap_or("/").to_string(),
            headers,
            body,
        };
        log.lock().unwrap().push(req.action());
        let resp = match handler(&req) {
            // The endpoint has gone away: the connection closes without an answer.
            Some(r) if r.status == 0 => return,
            Some(r) => r,
            None => match upstream {
                Some(up) => {
                    let r = http(up, &req.method, &req.path, &req.headers, &req.body);
                    observer(&req, &r);
                    r
                }
                None => Response::ssm_error(400, "UnknownOperationException", "not stubbed"),
            },
        };
        let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
        for (k, v) in &resp.headers {
            let lk = k.to_ascii_lowercase();
            if matches!(
                lk.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            ) {
                continue;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            resp.body.len()
        ));
        if writer.write_all(out.as_bytes()).is_err() || writer.write_all(&resp.body).is_err() {
            return;
        }
    }
}

// ---- faults ---------------------------------------------------------------------------------

/// What to do to the Nth call of an action.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Refuse it as access denied (not retried by the SDK).
    Deny,
    /// Send SIGTERM to this process before forwarding it.
    Signal(u32),
    /// SIGKILL this process, then forward the call all the same: the resource is created
    /// after its creator died, known to the ledger only by the name or tag chosen up front.
    Kill(u32),
}

/// Faults keyed by action and call number (1-based).
#[derive(Default)]
pub struct Faults {
    plan: Mutex<Vec<(String, usize, Fault)>>,
    /// action -> how long it answers "still in use" from its first call, and since when.
    busy: Mutex<HashMap<String, (Duration, Option<std::time::Instant>)>>,
    /// Set: every call is dropped unanswered, as if the endpoint had gone away.
    down: std::sync::atomic::AtomicBool,
    counts: Mutex<HashMap<String, usize>>,
    fired: Mutex<Vec<String>>,
}

impl Faults {
    pub fn add(&self, action: &str, nth: usize, fault: Fault) {
        self.plan.lock().unwrap().push((action.into(), nth, fault));
    }

    /// `action` (a delete) answers `DependencyViolation` for `how_long` from its first call,
    /// as AWS does for a security group while its terminated instance's interface lingers.
    pub fn busy_for(&self, action: &str, how_long: Duration) {
        self.busy
            .lock()
            .unwrap()
            .insert(action.into(), (how_long, None));
    }

    /// From now on the endpoint drops every call unanswered (`false`: it is back).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.plan.lock().unwrap().clear();
        self.counts.lock().unwrap().clear();
        self.fired.lock().unwrap().clear();
    }

    /// The faults that fired, as `action#n`.
    pub fn fired(&self) -> Vec<String> {
        self.fired.lock().unwrap().clone()
    }

    fn apply(&self, req: &Request) -> Option<Response> {
        let action = req.action();
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Some(Response {
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
            });
        }
        if let Some((how_long, since)) = self.busy.lock().unwrap().get_mut(&action) {
            let since = *since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < *how_long {
                return Some(Response::ec2_error(
                    400,
                    "DependencyViolation",
                    "resource has a dependent object (injected by the test proxy)",
                ));
            }
        }
        let n = {
            let mut c = self.counts.lock().unwrap();
            let n = c.entry(action.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let fault = self
            .plan
            .lock()
            .unwrap()
            .iter()
            .find(|(a, k, _)| *a == action && *k == n)
            .map(|(_, _, f)| f.clone())?;
        self.fired.lock().unwrap().push(format!("{action}#{n}"));
        match fault {
            Fault::Deny => Some(if action.starts_with("ssm:") {
                Response::ssm_error(
                    400,
                    "AccessDeniedException",
                    "User is not authorized to perform this action (injected by the test proxy)",
                )
            } else {
                Response::ec2_error(
                    403,
                    "UnauthorizedOperation",
                    "You are not authorized to perform this operation. (injected by the test proxy)",
                )
            }),
            Fault::Signal(pid) => {
                // SAFETY: kill has no memory effects; the pid is a child this test started.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                None
            }
            Fault::Kill(pid) => {
                // SAFETY: as above.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                std::thread::sleep(Duration::from_millis(300));
                None
            }
        }
    }
}

// ---- the Run Command stand-in ----------------------------------------------------------------

/// Runs Run Command scripts for instances: each instance has a copy-on-write chroot of this
/// machine's root; an image keeps its builder's layer; a probe sees its image's layer.
pub struct Instances {
    dir: PathBuf,
    state: Mutex<StandIn>,
    /// Commands run per instance, for assertions.
    pub commands: Mutex<Vec<(String, String)>>,
    /// Instances that are real guests: their commands run there ([`relay`]).
    pub relay: relay::Relay,
}

#[derive(Default)]
struct StandIn {
    /// instance -> image it was launched from
    image_of: HashMap<String, String>,
    /// image -> layer directory
    layers: HashMap<String, PathBuf>,
    /// command id -> (instance, exit, stdout, stderr, polls so far, finished)
    invocations: HashMap<String, (String, i32, String, String, u32, bool)>,
    locks: HashMap<String, Arc<Mutex<()>>>,
}

impl Instances {
    pub fn new(dir: &Path) -> Arc<Instances> {
        std::fs::create_dir_all(dir).unwrap();
        Arc::new(Instances {
            dir: dir.to_path_buf(),
            state: Mutex::new(StandIn::default()),
            commands: Mutex::new(Vec::new()),
            relay: relay::Relay::default(),
        })
    }

    fn upper(&self, instance: &str) -> PathBuf {
        self.dir.join(instance).join("upper")
    }

    /// Watches moto's answers to learn which image an instance came from and which instance
    /// an image was made of.
    pub fn observe(&self, req: &Request, resp: &Response) {
        if resp.status != 200 {
            return;
        }
        let text = resp.text();
        match req.action().as_str() {
            "ec2:RunInstances" => {
                let image = req.form("ImageId").unwrap_or_default();
                for id in xml_values(&text, "instanceId") {
                    self.state
                        .lock()
                        .unwrap()
                        .image_of
                        .insert(id, image.clone());
                }
            }
            "ec2:CreateImage" => {
                let instance = req.form("InstanceId").unwrap_or_default();
                if let Some(image) = xml_values(&text, "imageId").into_iter().next() {
                    let layer = self.dir.join(format!("{image}.layer"));
                    // The image keeps the builder's layer (its changes to the file system).
                    copy_tree(&self.upper(&instance), &layer);
                    self.state.lock().unwrap().layers.insert(image, layer);
                }
            }
            _ => {}
        }
    }

    fn lower_layers(&self, instance: &str) -> Vec<PathBuf> {
        let st = self.state.lock().unwrap();
        st.image_of
            .get(instance)
            .and_then(|img| st.layers.get(img))
            .cloned()
            .into_iter()
            .collect()
    }

    /// Answers the Run Command actions; everything else goes to moto.
    pub fn handle(self: &Arc<Self>, req: &Request) -> Option<Response> {
        if let Some(answer) = self.relay.handle(req) {
            return Some(answer);
        }
        let body = req.json();
        match req.action().as_str() {
            "ssm:DescribeInstanceInformation" => {
                let ids: Vec<String> = body["Filters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| f["Key"] == "InstanceIds")
                    .flat_map(|f| f["Values"].as_array().cloned().unwrap_or_default())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let list: Vec<serde_json::Value> = ids
                    .iter()
                    .map(|id| {
                        serde_json::json!({"InstanceId": id, "PingStatus": "Online",
                            "PlatformType": "Linux", "AgentVersion": "3.3.0.0"})
                    })
                    .collect();
                Some(Response::json(
                    200,
                    serde_json::json!({"InstanceInformationList": list}),
                ))
            }
            "ssm:SendCommand" => {
                let instance = body["InstanceIds"][0].as_str().unwrap_or("").to_string();
                let script = body["Parameters"]["commands"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .filter_map(|l| l.as_str())
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                self.commands
                    .lock()
                    .unwrap()
                    .push((instance.clone(), script.clone()));
                let id = format!("{:08x}-0000-4000-8000-{:012x}", rand_u32(), rand_u32());
                self.state.lock().unwrap().invocations.insert(
                    id.clone(),
                    (instance.clone(), -1, String::new(), String::new(), 0, false),
                );
                // SendCommand returns at once, as the service's does; the script runs beside.
                let (me, id2, instance2) = (self.clone(), id.clone(), instance.clone());
                std::thread::spawn(move || {
                    let (code, out, err) = me.execute(&instance2, &script);
                    if let Some(inv) = me.state.lock().unwrap().invocations.get_mut(&id2) {
                        (inv.1, inv.2, inv.3, inv.5) = (code, out, err, true);
                    }
                });
                Some(Response::json(
                    200,
                    serde_json::json!({"Command": {"CommandId": id, "DocumentName": "AWS-RunShellScript",
                        "InstanceIds": [instance], "Status": "Pending"}}),
                ))
            }
            "ssm:GetCommandInvocation" => {
                let id = body["CommandId"].as_str().unwrap_or("");
                let mut st = self.state.lock().unwrap();
                let Some(inv) = st.invocations.get_mut(id) else {
                    return Some(Response::ssm_error(400, "InvocationDoesNotExist", ""));
                };
                inv.4 += 1;
                // The first poll sees it running, as the service's would.
                if inv.4 == 1 || !inv.5 {
                    return Some(Response::json(
                        200,
                        serde_json::json!({"CommandId": id, "InstanceId": inv.0,
                            "Status": "InProgress", "StatusDetails": "InProgress", "ResponseCode": -1}),
                    ));
                }
                let status = if inv.1 == 0 { "Success" } else { "Failed" };
                Some(Response::json(
                    200,
                    serde_json::json!({"CommandId": id, "InstanceId": inv.0,
                        "Status": status, "StatusDetails": status, "ResponseCode": inv.1,
                        "StandardOutputContent": truncate(&inv.2, 24_000),
                        "StandardErrorContent": truncate(&inv.3, 8_000)}),
                ))
            }
            "ssm:CancelCommand" => Some(Response::json(200, serde_json::json!({}))),
            "ssm:ListCommandInvocations" => Some(Response::ssm_error(
                400,
                "UnknownOperationException",
                "not stood in for",
            )),
            _ => None,
        }
    }

    /// Runs `script` as root in the instance's copy-on-write chroot.
    fn execute(&self, instance: &str, script: &str) -> (i32, String, String) {
        let lock = self
            .state
            .lock()
            .unwrap()
            .locks
            .entry(instance.to_string())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().unwrap();
        let base = self.dir.join(instance);
        let (upper, work, merged) = (base.join("upper"), base.join("work"), base.join("merged"));
        if !upper.exists() {
            // A new instance starts from its image's layer. (Stacking the layer as a second
            // lower directory is refused: it lies inside `/`, the other lower.)
            std::fs::create_dir_all(&upper).unwrap();
            for layer in self.lower_layers(instance) {
                copy_tree(&layer, &upper);
            }
        }
        for d in [&work, &merged] {
            std::fs::create_dir_all(d).unwrap();
        }
        let lowers = ["/".to_string()];
        let setup = format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {m} && mount -t proc proc {m}/proc && mount --rbind /dev {m}/dev && exec chroot {m} /bin/sh -c \"$1\"",
            lowers.join(":"),
            upper.display(),
            work.display(),
            m = merged.display()
        );
        let out = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &setup,
                "sh",
                script,
            ])
            .env("HOME", "/root")
            .stdin(Stdio::null())
            .output()
            .expect("unshare runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// `cp -a from/. to/`: contents, modes, owners and overlayfs whiteouts.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(from).unwrap();
    std::fs::create_dir_all(to).unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "copying {} to {}", from.display(), to.display());
}

fn truncate(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

fn rand_u32() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .elapsed()
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() & 0xffff_ffff_ffff
}

/// Every `<tag>value</tag>` in an XML text.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j..];
    }
    out
}

// ---- the whole endpoint ----------------------------------------------------------------------

/// moto behind the proxy, with faults and the Run Command stand-in.
pub struct Endpoint {
    pub server: Server,
    /// What the endpoint held before the test (moto ships public images and their snapshots).
    baseline: Vec<String>,
    pub faults: Arc<Faults>,
    pub instances: Arc<Instances>,
    /// The image calls moto lacks (deprecation), and a record of copies and permissions.
    pub images: Arc<images::Images>,
    _dir: tempfile::TempDir,
}

impl Endpoint {
    /// Resets moto and starts a fresh proxy in front of it.
    pub fn start() -> Endpoint {
        let moto = moto();
        reset_moto();
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let instances = Instances::new(&dir.path().join("instances"));
        let images = Arc::new(images::Images::default());
        let (f, i, o) = (faults.clone(), instances.clone(), instances.clone());
        let (im, io) = (images.clone(), images.clone());
        let server = Server::start(
            Some(moto),
            Arc::new(move |req| {
                f.apply(req)
                    .or_else(|| i.handle(req))
                    .or_else(|| im.handle(req))
            }),
            Arc::new(move |req, resp| {
                o.observe(req, resp);
                io.observe(req, resp);
            }),
        );
        let mut e = Endpoint {
            server,
            faults,
            instances,
            images,
            baseline: Vec::new(),
            _dir: dir,
        };
        // The examples name an instance profile; moto checks that it exists.
        e.iam("Action=CreateRole&RoleName=bakery-ssm&AssumeRolePolicyDocument=%7B%7D");
        e.iam("Action=CreateInstanceProfile&InstanceProfileName=bakery-ssm");
        e.iam("Action=AddRoleToInstanceProfile&InstanceProfileName=bakery-ssm&RoleName=bakery-ssm");
        e.baseline = e.everything();
        e
    }

    /// What the test run created and left in the endpoint.
    pub fn leftovers(&self) -> Vec<String> {
        self.everything()
            .into_iter()
            .filter(|x| !self.baseline.contains(x))
            .collect()
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Calls moto directly (no faults) with a query-protocol EC2 action.
    pub fn ec2(&self, params: &str) -> String {
        query("ec2", &format!("{params}&Version=2016-11-15"))
    }

    /// Calls moto's EC2 of `region` directly (no faults).
    pub fn ec2_in(&self, region: &str, params: &str) -> String {
        query_in(region, "ec2", &format!("{params}&Version=2016-11-15"))
    }

    /// Calls moto's SSM of `region` directly.
    pub fn ssm_in(&self, region: &str, action: &str, body: serde_json::Value) -> serde_json::Value {
        let r = ssm_call(region, action, &body);
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("ssm {action}: {}", r.text()))
    }

    /// Calls moto directly with a query-protocol IAM action.
    pub fn iam(&self, params: &str) -> String {
        query("iam", &format!("{params}&Version=2010-05-08"))
    }

    /// Calls moto directly with an SSM JSON action.
    pub fn ssm(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let r = ssm_call("us-east-1", action, &body);
        assert!(
            r.status == 200 || r.status == 400,
            "ssm {action}: {} {}",
            r.status,
            r.text()
        );
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("ssm {action}: {}", r.text()))
    }

    /// Everything in the endpoint, as `kind id` lines: instances not terminated, key pairs,
    /// security groups, images and snapshots of this account.
    pub fn everything(&self) -> Vec<String> {
        let mut out = Vec::new();
        let instances = self.ec2("Action=DescribeInstances");
        for item in instances.split("<item>").skip(1) {
            if let Some(id) = xml_values(item, "instanceId").into_iter().next() {
                let state = xml_values(item, "name");
                if !state.iter().any(|s| s == "terminated") {
                    out.push(format!("instance {id}"));
                }
            }
        }
        for name in xml_values(&self.ec2("Action=DescribeKeyPairs"), "keyName") {
            out.push(format!("key-pair {name}"));
        }
        for id in xml_values(&self.ec2("Action=DescribeSecurityGroups"), "groupId") {
            out.push(format!("security-group {id}"));
        }
        for id in xml_values(&self.ec2("Action=DescribeImages&Owner.1=self"), "imageId") {
            out.push(format!("image {id}"));
        }
        let snaps = self.ec2("Action=DescribeSnapshots&Owner.1=self");
        for id in xml_values(&snaps, "snapshotId") {
            out.push(format!("snapshot {id}"));
        }
        out.sort();
        out.dedup();
        out
    }

    /// The tags of an image, from moto directly.
    pub fn image_tags(&self, id: &str) -> HashMap<String, String> {
        let xml = self.ec2(&format!("Action=DescribeImages&ImageId.1={id}"));
        tags_in(&xml)
    }
}

/// A fake SigV4 header: moto picks the service from its credential scope.
/// One SSM JSON action sent straight to moto in `region`.
fn ssm_call(region: &str, action: &str, body: &serde_json::Value) -> Response {
    http(
        moto(),
        "POST",
        "/",
        &[
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            ("X-Amz-Target".into(), format!("AmazonSSM.{action}")),
            ("Authorization".into(), authorization_in(region, "ssm")),
        ],
        body.to_string().as_bytes(),
    )
}

fn authorization(service: &str) -> String {
    authorization_in("us-east-1", service)
}

fn authorization_in(region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

/// Calls moto's `service` of `region` with a query-protocol body.
pub fn query_in(region: &str, service: &str, body: &str) -> String {
    let r = http(
        moto(),
        "POST",
        "/",
        &[
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Authorization".into(), authorization_in(region, service)),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{service} {region} {body}: {}", r.text());
    r.text()
}

fn query(service: &str, body: &str) -> String {
    query_in("us-east-1", service, body)
}

/// `key -> value` of every tag in an XML text.
pub fn tags_in(xml: &str) -> HashMap<String, String> {
    let keys = xml_values(xml, "key");
    let values = xml_values(xml, "value");
    keys.into_iter().zip(values).collect()
}

/// The SSM parameter moto answers with an Amazon Linux 2023 image.
pub const AL2023: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// An instance launched in moto, with what launched it.
pub struct Launched {
    /// Holds the ledger's directory.
    pub dir: tempfile::TempDir,
    pub ledger: std::sync::Arc<bakery::ledger::Ledger>,
    pub key: bakery::transport::ssh::KeyPair,
    pub instance: bakery::cloud::Instance,
}

/// An instance of `role` launched by `p` from the AL2023 image with `settings` and `tags`,
/// recorded on a ledger named `run` in a fresh directory.
pub fn launch(
    p: &bakery::cloud::aws::AwsProvider,
    run: &str,
    role: bakery::cloud::Role,
    settings: &bakery::config::InstanceSettings,
    tags: bakery::cloud::Tags,
) -> Launched {
    use bakery::cloud::Provider;
    let dir = tempfile::tempdir().unwrap();
    let ledger = bakery::ledger::Ledger::create(dir.path(), run).unwrap();
    let source = p
        .resolve_source(
            &bakery::config::Source::SsmParameter(AL2023.into()),
            &ledger,
        )
        .unwrap();
    let key = bakery::transport::ssh::KeyPair::generate("bakery-test").unwrap();
    let instance = p
        .launch(
            &bakery::cloud::LaunchRequest {
                image: &source,
                role,
                settings,
                key: &key,
                tags,
            },
            &ledger,
        )
        .unwrap();
    Launched {
        dir,
        ledger,
        key,
        instance,
    }
}

/// An image named `name` in us-east-1, made directly in moto as a bake would leave it: from
/// Amazon Linux 2023, tagged verified, created by Bakery and `app=baseline`, its builder
/// terminated (so nothing uses it).
pub fn verified_image(e: &Endpoint, name: &str) -> String {
    let base = e.ssm("GetParameter", serde_json::json!({"Name": AL2023}));
    let base = base["Parameter"]["Value"].as_str().unwrap().to_string();
    let run = e.ec2(&format!(
        "Action=RunInstances&ImageId={base}&MinCount=1&MaxCount=1&InstanceType=t3.micro"
    ));
    let instance = xml_values(&run, "instanceId").remove(0);
    let created = e.ec2(&format!(
        "Action=CreateImage&InstanceId={instance}&Name={name}"
    ));
    let image = xml_values(&created, "imageId").remove(0);
    e.ec2(&format!(
        "Action=CreateTags&ResourceId.1={image}&Tag.1.Key=bakery:status&Tag.1.Value=verified&Tag.2.Key=bakery:created-by&Tag.2.Value=bakery&Tag.3.Key=app&Tag.3.Value=baseline"
    ));
    e.ec2(&format!(
        "Action=TerminateInstances&InstanceId.1={instance}"
    ));
    image
}

/// What a finished run may leave: its image (and the image's snapshots) and nothing else; no
/// ledger either. Returns the images left.
pub fn assert_only_images_left(e: &Endpoint, data: &Path) -> Vec<String> {
    let left = e.leftovers();
    let images: Vec<String> = left
        .iter()
        .filter_map(|l| l.strip_prefix("image ").map(str::to_string))
        .collect();
    let mut snaps_of_images = Vec::new();
    for i in &images {
        let x = e.ec2(&format!("Action=DescribeImages&ImageId.1={i}"));
        snaps_of_images.extend(xml_values(&x, "snapshotId"));
    }
    for l in &left {
        let ok = l.starts_with("image ")
            || l.strip_prefix("snapshot ")
                .is_some_and(|s| snaps_of_images.iter().any(|x| x == s));
        assert!(ok, "the run left {l} behind; everything left: {left:?}");
    }
    let ledgers: Vec<_> = std::fs::read_dir(data.join("runs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(ledgers.is_empty(), "ledgers left: {ledgers:?}");
    images
}

/// The `bakery:status` tag of an image.
pub fn status_of(e: &Endpoint, image: &str) -> String {
    e.image_tags(image)
        .get("bakery:status")
        .cloned()
        .unwrap_or_default()
}
