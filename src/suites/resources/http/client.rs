//! A minimal HTTP/1.1 client for requests made from the runner: plain `http://`, one request
//! per connection, `Content-Length`, chunked or read-to-close bodies.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::super::RunnerView;
use crate::suites::model::HttpCheck;

/// The most bytes of a response read.
const LIMIT: u64 = 16 << 20;

/// Why there is no response to judge.
pub(super) enum Failure {
    /// The check cannot be made this way (an error).
    Unusable(String),
    /// The server did not answer (a failure).
    NoResponse(String),
}

/// A response: status, `Name: value` headers in canonical case, body.
pub(super) struct Response {
    pub status: u16,
    pub headers: Vec<String>,
    pub body: String,
}

impl Response {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Splits `http://host[:port]/path` into host, port and path.
fn split(url: &str) -> Result<(String, u16, String), Failure> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        Failure::Unusable(format!(
            "`from: runner` supports http:// URLs only, not `{url}`"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => {
            let port = p
                .parse()
                .map_err(|_| Failure::Unusable(format!("bad port in `{url}`")))?;
            (h, port)
        }
        _ => (authority, 80),
    };
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        path.to_string(),
    ))
}

/// Resolves a redirect target against the URL it came from.
pub(super) fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let origin_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let origin = match base[origin_end..].find('/') {
        Some(i) => &base[..origin_end + i],
        None => base,
    };
    if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let dir = base.rsplit_once('/').map(|(d, _)| d).unwrap_or(origin);
        format!("{dir}/{location}")
    }
}

/// Sends the request of `h` to `url` and reads the whole response.
pub(super) fn fetch(
    h: &HttpCheck,
    url: &str,
    view: Option<&RunnerView>,
    deadline: Instant,
) -> Result<Response, Failure> {
    let (host, port, path) = split(url)?;
    let (dial_host, dial_port) = match view {
        Some(v) => v.map(&host, port),
        None if host == "probe" => {
            return Err(Failure::Unusable(
                "`from: runner` with host `probe` needs the provider's view of the probe, and none was given".into(),
            ))
        }
        None => (host.clone(), port),
    };
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let no = |e: std::io::Error| Failure::NoResponse(format!("{dial_host}:{dial_port}: {e}"));
    let addr = (dial_host.as_str(), dial_port)
        .to_socket_addrs()
        .map_err(no)?
        .next()
        .ok_or_else(|| Failure::NoResponse(format!("{dial_host} has no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, left()).map_err(no)?;
    stream.set_read_timeout(Some(left())).map_err(no)?;
    stream.set_write_timeout(Some(left())).map_err(no)?;
    let method = h.method.as_deref().unwrap_or("GET");
    let host_header = if port == 80 {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: bakery\r\nAccept: */*\r\nConnection: close\r\n");
    for line in &h.request_headers {
        req += &format!("{}\r\n", line.trim());
    }
    if let Some(user) = &h.username {
        let creds = format!("{user}:{}", h.password.as_deref().unwrap_or(""));
        req += &format!("Authorization: Basic {}\r\n", base64(creds.as_bytes()));
    }
    let body = h.request_body.as_deref().unwrap_or("");
    if h.request_body.is_some() {
        req += &format!("Content-Length: {}\r\n", body.len());
    }
    req += "\r\n";
    req += body;
    stream.write_all(req.as_bytes()).map_err(no)?;
    let mut raw = Vec::new();
    stream.take(LIMIT).read_to_end(&mut raw).map_err(no)?;
    parse(&raw).ok_or_else(|| {
        Failure::NoResponse(format!("{dial_host}:{dial_port}: not an HTTP response"))
    })
}

/// Parses a whole HTTP/1.x response.
pub(super) fn parse(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| format!("{}: {}", super::canonical(n.trim()), v.trim()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let response = Response {
        status,
        headers,
        body: String::new(),
    };
    if response
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    } else if let Some(n) = response
        .header("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Some(Response {
        body: String::from_utf8_lossy(&body).into_owned(),
        ..response
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_every_body_framing() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nContent-Length: 5\r\n\r\nhello, extra",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hello"));
        assert_eq!(r.headers[0], "Content-Type: text/html");
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, "hello world");
        let r = parse(b"HTTP/1.0 404 Not Found\r\n\r\ngone").unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "gone"));
        assert!(parse(b"SSH-2.0-OpenSSH_9.2p1\r\n").is_none());
    }

    #[test]
    fn urls_and_redirects() {
        assert!(
            matches!(split("http://probe:8080/x?y"), Ok((h, 8080, p)) if h == "probe" && p == "/x?y")
        );
        assert!(matches!(split("http://probe"), Ok((h, 80, p)) if h == "probe" && p == "/"));
        assert!(matches!(split("https://x/"), Err(Failure::Unusable(_))));
        assert_eq!(join("http://a:1/b/c", "/d"), "http://a:1/d");
        assert_eq!(join("http://a:1/b/c", "d"), "http://a:1/b/d");
        assert_eq!(join("http://a/b", "http://e/f"), "http://e/f");
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
