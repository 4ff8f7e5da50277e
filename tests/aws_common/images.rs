//! Stand-ins for the image calls moto lacks or fakes, answered in the shapes the EC2 API
//! reference documents, and a record of what Bakery asked:
//!
//! - `EnableImageDeprecation` (moto: HTTP 500) is answered here and recorded; afterwards the
//!   image's `deprecationTime` appears in `DescribeImages` answers, as on EC2.
//! - `CopyImage` goes to moto (which copies the image between its regions, with a new snapshot,
//!   but ignores `Encrypted`, `KmsKeyId`, `ClientToken` and tags): the request is recorded, so
//!   tests assert on what Bakery sent. A delay can be set: the copy then shows `pending` in
//!   `DescribeImages` until the delay has passed, as a real copy does while it runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{http, moto, xml_values, Request, Response};

/// What the stand-in saw and holds.
#[derive(Default)]
pub struct Images {
    /// image id → deprecation time as sent (ISO 8601).
    pub deprecations: Mutex<HashMap<String, String>>,
    /// Every EnableImageDeprecation request: (image, time).
    pub deprecation_calls: Mutex<Vec<(String, String)>>,
    /// Every CopyImage request as form fields, with the region it was sent to.
    pub copies: Mutex<Vec<(String, HashMap<String, String>)>>,
    /// Every ModifyImageAttribute and ModifySnapshotAttribute request's form fields.
    pub modifications: Mutex<Vec<HashMap<String, String>>>,
    /// How long a copy stays `pending`.
    pub copy_delay: Mutex<Duration>,
    /// copy id → when it becomes available.
    ready_at: Mutex<HashMap<String, Instant>>,
}

/// The region a request was signed for (moto picks its backend by it too).
pub fn region_of(req: &Request) -> String {
    req.header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("")
        .to_string()
}

/// Every form field of a query-protocol request.
pub fn form_fields(req: &Request) -> HashMap<String, String> {
    let body = String::from_utf8_lossy(&req.body).to_string();
    body.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), super::url_decode(v)))
        })
        .collect()
}

impl Images {
    /// Answers the calls moto lacks; rewrites DescribeImages for deprecations and pending copies.
    pub fn handle(&self, req: &Request) -> Option<Response> {
        match req.action().as_str() {
            "ec2:EnableImageDeprecation" => {
                let image = req.form("ImageId").unwrap_or_default();
                let at = req.form("DeprecateAt").unwrap_or_default();
                self.deprecation_calls
                    .lock()
                    .unwrap()
                    .push((image.clone(), at.clone()));
                self.deprecations.lock().unwrap().insert(image, at);
                Some(Response {
                    status: 200,
                    headers: vec![("Content-Type".into(), "text/xml".into())],
                    body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EnableImageDeprecationResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>11111111-2222-3333-4444-555555555555</requestId><return>true</return></EnableImageDeprecationResponse>".to_vec(),
                })
            }
            "ec2:DescribeImages" => {
                let deprecations = self.deprecations.lock().unwrap().clone();
                let pending: Vec<String> = {
                    let now = Instant::now();
                    self.ready_at
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|(_, t)| **t > now)
                        .map(|(id, _)| id.clone())
                        .collect()
                };
                if deprecations.is_empty() && pending.is_empty() {
                    return None;
                }
                let r = http(moto(), &req.method, &req.path, &req.headers, &req.body);
                if r.status != 200 {
                    return Some(r);
                }
                let body = rewrite_images(&r.text(), &deprecations, &pending);
                Some(Response {
                    status: 200,
                    headers: r.headers,
                    body: body.into_bytes(),
                })
            }
            "ec2:ModifyImageAttribute" | "ec2:ModifySnapshotAttribute" => {
                self.modifications.lock().unwrap().push(form_fields(req));
                None
            }
            _ => None,
        }
    }

    /// Records copies and when they become available.
    pub fn observe(&self, req: &Request, resp: &Response) {
        if req.action() != "ec2:CopyImage" {
            return;
        }
        self.copies
            .lock()
            .unwrap()
            .push((region_of(req), form_fields(req)));
        if resp.status != 200 {
            return;
        }
        let delay = *self.copy_delay.lock().unwrap();
        if let Some(id) = xml_values(&resp.text(), "imageId").into_iter().next() {
            self.ready_at
                .lock()
                .unwrap()
                .insert(id, Instant::now() + delay);
        }
    }

    pub fn clear(&self) {
        self.deprecations.lock().unwrap().clear();
        self.deprecation_calls.lock().unwrap().clear();
        self.copies.lock().unwrap().clear();
        self.modifications.lock().unwrap().clear();
        self.ready_at.lock().unwrap().clear();
    }
}

/// Each top-level `<item>` of the `imagesSet`: its deprecation time added, its state `pending`
/// while its copy runs.
fn rewrite_images(xml: &str, deprecations: &HashMap<String, String>, pending: &[String]) -> String {
    let mut out = String::with_capacity(xml.len() + 64);
    let mut rest = xml;
    let Some(start) = rest.find("<imagesSet>") else {
        return xml.to_string();
    };
    out.push_str(&rest[..start + "<imagesSet>".len()]);
    rest = &rest[start + "<imagesSet>".len()..];
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("<item>") {
            out.push_str(rest);
            return out;
        }
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        // Find the matching </item>.
        let mut depth = 0usize;
        let mut i = 0;
        let end = loop {
            let open = trimmed[i..].find("<item>").map(|p| p + i);
            let close = trimmed[i..].find("</item>").map(|p| p + i);
            match (open, close) {
                (Some(o), Some(c)) if o < c => {
                    depth += 1;
                    i = o + "<item>".len();
                }
                (_, Some(c)) => {
                    depth -= 1;
                    i = c + "</item>".len();
                    if depth == 0 {
                        break i;
                    }
                }
                _ => return xml.to_string(),
            }
        };
        let mut item = trimmed[..end].to_string();
        let id = xml_values(&item, "imageId")
            .into_iter()
            .next()
            .unwrap_or_default();
        if let Some(at) = deprecations.get(&id) {
            item = item.replacen(
                "<item>",
                &format!("<item><deprecationTime>{at}</deprecationTime>"),
                1,
            );
        }
        if pending.contains(&id) {
            item = item.replacen(
                "<imageState>available</imageState>",
                "<imageState>pending</imageState>",
                1,
            );
        }
        out.push_str(&item);
        rest = &trimmed[end..];
    }
}
