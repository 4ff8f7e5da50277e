//! `http`: a request made from the probe with curl; status, headers and body.

use std::time::Duration;

use serde_json::Value;

use super::{all_errors, marker, missing_tool, quote_all, Assert, Outcome, RunnerView};

mod client;

/// Whether `raw` parses as an HTTP response (for the fuzz tests of the parser).
#[cfg(test)]
pub(super) fn parses_as_response(raw: &[u8]) -> bool {
    client::parse(raw).is_some()
}
use crate::suites::matcher::Matcher;
use crate::suites::model::HttpCheck;
use crate::transport::ExecOutput;

pub(super) fn validate(h: &HttpCheck) -> Result<(), String> {
    if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
        return Err(format!("`{}` is not an http:// or https:// URL", h.url));
    }
    if let Some(bad) = h.request_headers.iter().find(|h| !h.contains(':')) {
        return Err(format!(
            "request header `{bad}` is not of the form `Name: value`"
        ));
    }
    Ok(())
}

/// One curl per request: the body, then a marker line with the status and the headers as JSON.
pub(super) fn script(checks: &[&HttpCheck], timeout: Duration) -> String {
    let Some(h) = checks.first() else {
        return String::from("true");
    };
    // Leave the transport a moment more than curl, so a slow server is a failure, not an error.
    let max_time = timeout
        .saturating_sub(Duration::from_secs(2))
        .max(Duration::from_secs(1));
    let mut args: Vec<String> = vec!["curl".into(), "-sS".into()];
    if !h.no_follow_redirects {
        args.push("-L".into());
    }
    if h.allow_insecure {
        args.push("-k".into());
    }
    args.extend([
        "-X".into(),
        h.method.clone().unwrap_or_else(|| "GET".into()),
    ]);
    args.extend([
        "--max-time".into(),
        format!("{:.1}", max_time.as_secs_f64()),
    ]);
    for header in &h.request_headers {
        args.extend(["-H".into(), header.clone()]);
    }
    if let Some(body) = &h.request_body {
        args.extend(["--data-binary".into(), body.clone()]);
    }
    if let Some(user) = &h.username {
        let pass = h.password.as_deref().unwrap_or("");
        args.extend(["-u".into(), format!("{user}:{pass}")]);
    }
    let write_out = format!("\n{} %{{http_code}}\n%{{header_json}}", marker());
    args.extend([
        "-o".into(),
        "-".into(),
        "-w".into(),
        write_out,
        h.url.clone(),
    ]);
    quote_all(args.iter().map(String::as_str))
}

pub(super) fn evaluate(checks: &[&HttpCheck], out: &ExecOutput) -> Vec<Outcome> {
    if let Some(e) = missing_tool(out, "curl") {
        return all_errors(checks.len(), &e, out);
    }
    checks.iter().map(|h| evaluate_one(h, out)).collect()
}

fn evaluate_one(h: &HttpCheck, out: &ExecOutput) -> Outcome {
    let sep = format!("\n{} ", marker());
    let Some((body, tail)) = out.stdout.rsplit_once(&sep) else {
        return Outcome::error(
            &format!(
                "could not read curl's output (exit status {})",
                out.exit_code
            ),
            &format!("{}{}", out.stdout, out.stderr),
        );
    };
    let (code, header_json) = tail.split_once('\n').unwrap_or((tail, "{}"));
    if code == "000" {
        return judge(h, Err(out.stderr.trim()));
    }
    // curl before 7.83 has no %{header_json}; that only matters when headers are checked.
    match headers(header_json) {
        Some(headers) => judge(h, Ok((code, headers, body))),
        None if h.headers.is_none() => judge(h, Ok((code, Vec::new(), body))),
        None => Outcome::error(
            "could not read the response headers (curl 7.83 or later is needed)",
            header_json,
        ),
    }
}

/// Compares a response (status, `Name: value` headers, body) or a failure to get one.
fn judge(h: &HttpCheck, response: Result<(&str, Vec<String>, &str), &str>) -> Outcome {
    let method = h.method.as_deref().unwrap_or("GET");
    let mut a = Assert::new(format!("http {method} {}", h.url));
    let expected_status = h.status.clone().unwrap_or(Matcher::equal(200));
    let (code, headers, body) = match response {
        Ok(r) => r,
        Err(why) => {
            a.row(
                "status",
                &expected_status.to_string(),
                &format!("no response ({why})"),
                false,
            );
            return a.finish(why.to_string());
        }
    };
    a.matcher("status", &expected_status, &Value::from(code));
    a.opt("headers", &h.headers, || Value::from(headers.join("\n")));
    a.opt("body", &h.body, || Value::from(body));
    let output = format!("HTTP {code}\n{}\n\n{}", headers.join("\n"), body);
    a.finish(output)
}

/// Makes the request from the runner with a small HTTP/1.1 client (plain `http://` only);
/// the host `probe` is mapped through `view`.
pub(crate) fn request_from_runner(
    h: &HttpCheck,
    view: Option<&RunnerView>,
    timeout: Duration,
) -> Outcome {
    let deadline = std::time::Instant::now() + timeout;
    let mut url = h.url.clone();
    for _ in 0..10 {
        let response = match client::fetch(h, &url, view, deadline) {
            Ok(r) => r,
            Err(client::Failure::Unusable(e)) => return Outcome::error(&e, ""),
            Err(client::Failure::NoResponse(e)) => return judge(h, Err(&e)),
        };
        let location = response.header("location");
        match (response.status / 100, location, h.no_follow_redirects) {
            (3, Some(loc), false) => url = client::join(&url, &loc),
            _ => {
                let code = response.status.to_string();
                return judge(h, Ok((&code, response.headers.clone(), &response.body)));
            }
        }
    }
    judge(h, Err("more than 10 redirects"))
}

/// `Name: value` lines from curl's `%{header_json}`, names in canonical MIME case.
fn headers(json: &str) -> Option<Vec<String>> {
    let map: serde_json::Map<String, Value> = serde_json::from_str(json).ok()?;
    let mut lines = Vec::new();
    for (name, values) in map {
        let name = canonical(&name);
        for v in values.as_array()? {
            lines.push(format!("{name}: {}", v.as_str()?));
        }
    }
    Some(lines)
}

pub(super) fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::test_support::output as out;
    use crate::suites::result::Status;

    fn http(yaml: &str) -> HttpCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn response() -> String {
        format!(
            "<h1>Baked by Bakery</h1>\n\n{} 200\n{{\"server\":[\"nginx/1.22.1\"],\n\"content-type\":[\"text/html\"]\n}}",
            marker()
        )
    }

    #[test]
    fn status_headers_and_body_are_checked() {
        let h = http("{url: 'http://127.0.0.1/', body: {contains: Baked by Bakery}, headers: ['Content-Type: text/html']}");
        let o = evaluate(&[&h], &out(0, &response(), ""));
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert!(o[0].output.starts_with("HTTP 200\n"), "{}", o[0].output);
        assert!(
            o[0].output.contains("\nServer: nginx/1.22.1\n"),
            "{}",
            o[0].output
        );
        let h = http("{url: 'http://127.0.0.1/', headers: ['Content-Type: text/', '!X-Powered-By'], status: {lt: 300}}");
        assert_eq!(
            evaluate(&[&h], &out(0, &response(), ""))[0].status,
            Status::Passed
        );
        let h =
            http("{url: 'http://127.0.0.1/', headers: {contain-element: 'Server: nginx/1.22.1'}}");
        assert_eq!(
            evaluate(&[&h], &out(0, &response(), ""))[0].status,
            Status::Passed
        );
        let h = http("{url: 'http://127.0.0.1/', status: 404}");
        let o = evaluate(&[&h], &out(0, &response(), ""));
        assert_eq!(
            o[0].message,
            "http GET http://127.0.0.1/: status: expected 404, got 200"
        );
    }

    #[test]
    fn no_response_is_a_failure_and_no_curl_an_error() {
        let h = http("{url: 'http://127.0.0.1:81/'}");
        let stdout = format!("\n{} 000\n{{\n}}", marker());
        let o = evaluate(
            &[&h],
            &out(
                7,
                &stdout,
                "curl: (7) Failed to connect to 127.0.0.1 port 81: Connection refused\n",
            ),
        );
        assert_eq!(o[0].status, Status::Failed);
        assert!(
            o[0].message.contains("no response (curl: (7) Failed"),
            "{}",
            o[0].message
        );
        let o = evaluate(&[&h], &out(127, "", "sh: 1: curl: not found\n"));
        assert_eq!(o[0].status, Status::Error);
    }

    #[test]
    fn from_the_runner_through_a_forwarded_port() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for (i, s) in l.incoming().enumerate() {
                let mut s = s.unwrap();
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply = if i == 0 {
                    "HTTP/1.1 301 Moved\r\nLocation: /index.html\r\nContent-Length: 0\r\n\r\n"
                        .to_string()
                } else {
                    let body = format!(
                        "Baked by Bakery; host={}",
                        req.lines().find(|l| l.starts_with("Host:")).unwrap_or("")
                    );
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                };
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        let view = RunnerView {
            host: "127.0.0.1".into(),
            ports: [(80, port)].into(),
        };
        let h = http("{url: 'http://probe/', from: runner, body: {contains: Baked by Bakery}, headers: ['Content-Type: text/html']}");
        let o = request_from_runner(&h, Some(&view), Duration::from_secs(10));
        assert_eq!(o.status, Status::Passed, "{} / {}", o.message, o.output);
        assert!(o.output.contains("host=Host: probe"), "{}", o.output);
        let h = http("{url: 'http://probe:81/', from: runner}");
        let closed = RunnerView {
            host: "127.0.0.1".into(),
            ports: [(81, 1)].into(),
        };
        let o = request_from_runner(&h, Some(&closed), Duration::from_secs(5));
        assert_eq!(o.status, Status::Failed, "{}", o.message);
        assert!(o.message.contains("no response"), "{}", o.message);
    }

    #[test]
    fn the_request_is_quoted_for_the_shell() {
        let h = http("{url: 'http://x/?a=1&b=2', method: POST, request-headers: ['X-A: b c'], allow-insecure: true}");
        let s = script(&[&h], Duration::from_secs(30));
        assert!(
            s.starts_with("curl -sS -L -k -X POST --max-time 28.0 -H 'X-A: b c' -o - -w "),
            "{s}"
        );
        assert!(s.ends_with(" 'http://x/?a=1&b=2'"), "{s}");
        assert!(validate(&http("{url: 'ftp://x'}")).is_err());
    }
}
