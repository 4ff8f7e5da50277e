//! Timestamps as Bakery writes them: UTC, RFC 3339, whole seconds.

/// The current time, e.g. `2026-11-22T03:15:00Z`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
