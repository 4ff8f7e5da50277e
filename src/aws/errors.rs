//! Errors from the AWS SDKs, in Bakery's words: which action was refused, and for access denied,
//! which policy the credentials need.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

/// Turns an SDK error into Bakery's: names the refused action, and for access denied points
/// at the policy Bakery needs.
pub fn api_error<E, R>(action: &str, e: aws_sdk_ec2::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(endpoint) = endpoint_problem(action, &e) {
        return endpoint;
    }
    let code = e.code().unwrap_or("").to_string();
    let message = e.message().unwrap_or("").to_string();
    if is_access_denied(&code) {
        return Error::Infra(format!(
            "AWS refused {action}: access denied ({code}: {message}); the credentials need the permissions in docs/iam-policy.json"
        ));
    }
    let detail = if code.is_empty() {
        aws_sdk_ec2::error::DisplayErrorContext(&e).to_string()
    } else {
        format!("{code}: {message}")
    };
    Error::Infra(format!("AWS {action} failed: {detail}"))
}

/// The endpoint's own failures, each in one sentence: it could not be reached, it does not
/// implement `action` (an HTTP 500/501 with no AWS error in it, as moto answers for a call it
/// lacks), or it answered with a web page rather than the API (a proxy, a captive portal, a
/// wrong URL). `None` for an error that AWS itself sent.
fn endpoint_problem<E, R>(action: &str, e: &aws_sdk_ec2::error::SdkError<E, R>) -> Option<Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_sdk_ec2::error::SdkError;
    let check = "check the endpoint (BAKERY_AWS_ENDPOINT_URL, --endpoint-url, AWS_ENDPOINT_URL) and the network";
    match e {
        SdkError::DispatchFailure(d) => Some(Error::Endpoint(format!(
            "AWS {action} failed: the endpoint could not be reached ({}); {check}",
            innermost(e).unwrap_or_else(|| format!("{d:?}"))
        ))),
        SdkError::TimeoutError(_) => Some(Error::Endpoint(format!(
            "AWS {action} failed: the endpoint did not answer in time; {check}"
        ))),
        _ => {
            let raw = e.raw_response()?;
            let raw = (raw as &dyn std::any::Any)
                .downcast_ref::<aws_sdk_ec2::config::http::HttpResponse>()?;
            let status = raw.status().as_u16();
            let content_type = raw
                .headers()
                .get("content-type")
                .unwrap_or("")
                .to_ascii_lowercase();
            let body = raw.body().bytes().unwrap_or_default();
            let start = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim_start()
                .to_ascii_lowercase();
            let html = content_type.contains("html")
                || start.starts_with("<!doctype html")
                || start.starts_with("<html");
            let code = e.code().unwrap_or("");
            if code == "NotImplemented"
                || (matches!(status, 500 | 501) && (html || code.is_empty()))
            {
                return Some(Error::Endpoint(format!(
                    "the AWS endpoint does not implement `{action}` (it answered HTTP {status} without an AWS error); use an endpoint that does, such as AWS itself"
                )));
            }
            if html {
                return Some(Error::Endpoint(format!(
                    "AWS {action} failed: the endpoint answered HTTP {status} with a web page, not an AWS API response; {check}"
                )));
            }
            if code.is_empty() && matches!(e, SdkError::ResponseError(_)) {
                return Some(Error::Endpoint(format!(
                    "AWS {action} failed: the endpoint's answer (HTTP {status}, {} bytes of `{}`) is not an AWS API response; {check}",
                    body.len(),
                    if content_type.is_empty() { "no content type" } else { content_type.as_str() }
                )));
            }
            None
        }
    }
}

/// The last cause in an error's chain ("Connection refused (os error 111)").
fn innermost(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = e.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}

fn is_access_denied(code: &str) -> bool {
    matches!(
        code,
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "AuthFailure"
    )
}

/// The error code of an SDK error, if the service sent one.
pub fn code_of<E: ProvideErrorMetadata, R>(e: &aws_sdk_ec2::error::SdkError<E, R>) -> String {
    e.code().unwrap_or("").to_string()
}

/// The error code of an SSM SDK error.
pub fn ssm_code<E: ProvideErrorMetadata, R>(e: &aws_sdk_ssm::error::SdkError<E, R>) -> String {
    e.code().unwrap_or("").to_string()
}

/// Like [`api_error`], for SSM (both SDKs share the smithy error type).
pub fn ssm_error<E, R>(action: &str, e: aws_sdk_ssm::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    api_error(action, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_codes_are_recognised() {
        assert!(is_access_denied("UnauthorizedOperation"));
        assert!(is_access_denied("AccessDeniedException"));
        assert!(!is_access_denied("InvalidAMIID.NotFound"));
    }
}
