//! What the AWS provider (`cloud::aws`) and the SSM transport (`transport::ssm`) share: waiting
//! with backoff under a deadline, and SDK errors in Bakery's words.
//!
//! It sits below both: the provider uses the transport (it hands out SSM transports), so the
//! transport borrowing these from the provider would make the two depend on each other.

pub mod errors;
pub mod wait;

pub use errors::{api_error, code_of, ssm_code, ssm_error};
