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
