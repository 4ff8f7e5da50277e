//! A stand-in for api.github.com on 127.0.0.1: every request is checked against GitHub's REST
//! description ([`super::openapi::Spec`]) and recorded; check-run requests get the answers
//! GitHub documents (its own examples, with this run's id, name and sha), and so do the git
//! database requests of a release (commits, blobs, trees, references), which keep the
//! repository's references in memory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::openapi::Spec;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// As GitHub does for a token with `checks: write`.
    Writable,
    /// As GitHub does for a read-only token (fork pull requests): 403 on creating a check run.
    ReadOnly,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Option<Value>,
    /// The operation GitHub's description names it, when it matched.
    pub operation: Option<String>,
    /// What does not match GitHub's description; empty for a valid request.
    pub problems: Vec<String>,
    pub status: u16,
}

/// The repository's git references (`tags/v1.2.3` -> sha) and the objects the requests made.
#[derive(Debug, Default)]
struct Git {
    refs: BTreeMap<String, String>,
    made: u64,
}

impl Git {
    /// A new object's sha: 40 hex digits, different each time.
    fn new_sha(&mut self) -> String {
        self.made += 1;
        format!("{:040x}", 0xb4_u64 << 32 | self.made)
    }
}

/// The server; stops when dropped.
pub struct FakeGitHub {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    git: Arc<Mutex<Git>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl FakeGitHub {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(spec: Arc<Spec>, behaviour: Behaviour) -> FakeGitHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let git = Arc::new(Mutex::new(Git::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let next_id = Arc::new(AtomicU64::new(4242));
        {
            let (requests, stop, git) = (requests.clone(), stop.clone(), git.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (spec, requests, next_id, git) =
                        (spec.clone(), requests.clone(), next_id.clone(), git.clone());
                    std::thread::spawn(move || {
                        serve(stream, &spec, behaviour, &requests, &next_id, &git)
                    });
                }
            });
        }
        FakeGitHub {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            git,
            stop,
            port,
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Sets a git reference of the repository (`tags/v1.2.3`).
    pub fn set_ref(&self, name: &str, sha: &str) {
        self.git
            .lock()
            .unwrap()
            .refs
            .insert(name.to_string(), sha.to_string());
    }

    /// The repository's git references now.
    pub fn refs(&self) -> BTreeMap<String, String> {
        self.git.lock().unwrap().refs.clone()
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves the requests of one connection (keep-alive) until the client closes it.
fn serve(
    stream: TcpStream,
    spec: &Spec,
    behaviour: Behaviour,
    log: &Mutex<Vec<Recorded>>,
    next_id: &AtomicU64,
    git: &Mutex<Git>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    // A connection carries a bounded number of requests; hyper opens another when it closes.
    for _ in 0..1000 {
        let Some((method, path, headers, body)) = read_request(&mut reader) else {
            return;
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut problems = Vec::new();
        let body_json: Option<Value> = if body.is_empty() {
            None
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(format!("the body is not JSON: {e}"));
                    None
                }
            }
        };
        if body_json.is_some()
            && !header("content-type").is_some_and(|c| c.starts_with("application/json"))
        {
            problems.push(format!(
                "a JSON body needs Content-Type application/json, not {:?}",
                header("content-type")
            ));
        }
        let (matched, found) = spec.check(&method, &path, body_json.as_ref());
        problems.extend(found);
        let operation = matched.as_ref().map(|m| m.operation_id.clone());
        let (status, response) = respond(
            spec,
            behaviour,
            matched.as_ref(),
            &problems,
            body_json.as_ref(),
            next_id,
            git,
        );
        log.lock().unwrap().push(Recorded {
            method: method.clone(),
            path: path.clone(),
            authorization: header("authorization"),
            body: body_json,
            operation,
            problems,
            status,
        });
        let text = response.to_string();
        let reason = match status {
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            403 => "Forbidden",
            404 => "Not Found",
            _ => "Unprocessable Entity",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nx-github-media-type: github.v3\r\n\r\n",
            text.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(text.as_bytes()).is_err()
        {
            return;
        }
        let _ = writer.flush();
    }
}

fn respond(
    spec: &Spec,
    behaviour: Behaviour,
    matched: Option<&super::openapi::Matched>,
    problems: &[String],
    body: Option<&Value>,
    next_id: &AtomicU64,
    git: &Mutex<Git>,
) -> (u16, Value) {
    let Some(m) = matched else {
        return (404, json!({"message": "Not Found", "errors": problems}));
    };
    if !problems.is_empty() {
        return (
            422,
            json!({"message": "Validation Failed", "errors": problems}),
        );
    }
    let body = body.cloned().unwrap_or(Value::Null);
    let param = |name: &str| {
        m.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    match m.operation_id.as_str() {
        "checks/create" if behaviour == Behaviour::ReadOnly => (
            403,
            json!({
                "message": "Resource not accessible by integration",
                "documentation_url": "https://docs.github.com/rest/checks/runs#create-a-check-run",
                "status": "403"
            }),
        ),
        "checks/create" => {
            let mut v = spec.example(&m.template, "post", "201");
            v["id"] = json!(next_id.fetch_add(1, Ordering::SeqCst));
            v["name"] = body["name"].clone();
            v["head_sha"] = body["head_sha"].clone();
            (201, v)
        }
        "checks/update" => {
            let mut v = spec.example(&m.template, "patch", "200");
            let id: u64 = m
                .params
                .iter()
                .find(|(k, _)| k == "check_run_id")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            v["id"] = json!(id);
            if let Some(c) = body.get("conclusion") {
                v["conclusion"] = c.clone();
            }
            (200, v)
        }
        "git/get-commit" => {
            let mut v = spec.example(&m.template, "get", "200");
            v["sha"] = json!(param("commit_sha"));
            v["tree"]["sha"] = json!(tree_of(&param("commit_sha")));
            (200, v)
        }
        "git/create-blob" | "git/create-tree" | "git/create-commit" => {
            let mut v = spec.example(&m.template, "post", "201");
            v["sha"] = json!(git.lock().unwrap().new_sha());
            if m.operation_id == "git/create-commit" {
                v["tree"]["sha"] = body["tree"].clone();
                v["message"] = body["message"].clone();
            }
            (201, v)
        }
        "git/get-ref" | "git/update-ref" => {
            let name = param("ref");
            let mut git = git.lock().unwrap();
            let Some(sha) = git.refs.get(&name).cloned() else {
                return (404, json!({"message": "Not Found"}));
            };
            let sha = if m.operation_id == "git/update-ref" {
                let new = body["sha"].as_str().unwrap_or_default().to_string();
                git.refs.insert(name.clone(), new.clone());
                new
            } else {
                sha
            };
            let method = if m.operation_id == "git/update-ref" {
                "patch"
            } else {
                "get"
            };
            (200, git_ref(spec, &m.template, method, "200", &name, &sha))
        }
        "git/create-ref" => {
            let name = body["ref"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("refs/")
                .to_string();
            let sha = body["sha"].as_str().unwrap_or_default().to_string();
            let mut git = git.lock().unwrap();
            if git.refs.contains_key(&name) {
                return (422, json!({"message": "Reference already exists"}));
            }
            git.refs.insert(name.clone(), sha.clone());
            (201, git_ref(spec, &m.template, "post", "201", &name, &sha))
        }
        other => (
            404,
            json!({"message": format!("the stand-in does not serve {other}")}),
        ),
    }
}

/// The tree of a commit the stand-in did not make: a sha derived from the commit's.
pub fn tree_of(commit: &str) -> String {
    commit.chars().rev().collect()
}

/// A reference as GitHub describes it, pointing at `sha`.
fn git_ref(
    spec: &Spec,
    template: &str,
    method: &str,
    status: &str,
    name: &str,
    sha: &str,
) -> Value {
    let mut v = spec.example(template, method, status);
    v["ref"] = json!(format!("refs/{name}"));
    v["object"]["sha"] = json!(sha);
    v["object"]["type"] = json!("commit");
    v
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        for _ in 0..100_000 {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = get("content-length").and_then(|n| n.parse::<usize>().ok()) {
        body = vec![0; n];
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path, headers, body))
}

/// Sends one raw request (for tests of the validator itself); returns the status.
pub fn raw_request(url: &str, method: &str, path: &str, body: &Value) -> u16 {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let text = body.to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    status.split_whitespace().nth(1).unwrap().parse().unwrap()
}
