//! What an EC2 instance prints on its console: the host keys cloud-init announces, and a
//! readable tail for error messages.

use base64::Engine;

/// Decodes `GetConsoleOutput`'s `Output`, which EC2 returns base64-encoded (the SDK does not
/// decode it). Text that is not base64 is returned as it is.
pub fn decode(output: &str) -> String {
    let compact: String = output.chars().filter(|c| !c.is_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => output.to_string(),
    }
}

/// The ed25519 host key cloud-init printed between `-----BEGIN SSH HOST KEY KEYS-----` and
/// `-----END SSH HOST KEY KEYS-----`, as an OpenSSH public key line. Lines carry a prefix on
/// some images (`ec2: `, a timestamp), so each key is looked for anywhere in its line.
pub fn host_key(console: &str) -> Option<String> {
    let mut inside = false;
    let mut found = None;
    for line in console.lines() {
        if line.contains("-----BEGIN SSH HOST KEY KEYS-----") {
            inside = true;
            continue;
        }
        if line.contains("-----END SSH HOST KEY KEYS-----") {
            inside = false;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(pos) = line.find("ssh-ed25519 ") {
            let mut words = line[pos..].split_whitespace();
            let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
                continue;
            };
            let candidate = format!("{kind} {blob}");
            if ssh_key::PublicKey::from_openssh(&candidate).is_ok() {
                // A later boot prints the keys again; the newest block wins.
                found = Some(candidate);
            }
        }
    }
    found
}

/// The SHA-256 fingerprints cloud-init printed between `-----BEGIN SSH HOST KEY
/// FINGERPRINTS-----` and its END line (`256 SHA256:… root@host (ED25519)`).
pub fn fingerprints(console: &str) -> Vec<String> {
    let mut inside = false;
    let mut found = Vec::new();
    for line in console.lines() {
        if line.contains("-----BEGIN SSH HOST KEY FINGERPRINTS-----") {
            inside = true;
            continue;
        }
        if line.contains("-----END SSH HOST KEY FINGERPRINTS-----") {
            inside = false;
            continue;
        }
        if inside {
            if let Some(fp) = line.split_whitespace().find(|w| w.starts_with("SHA256:")) {
                found.push(fp.to_string());
            }
        }
    }
    found
}

/// The announced ed25519 host key, if its fingerprint is among the announced fingerprints
/// (when cloud-init printed any): both blocks must agree before the key is trusted.
pub fn trusted_host_key(console: &str) -> Option<String> {
    let key = host_key(console)?;
    let prints = fingerprints(console);
    if prints.is_empty() {
        return Some(key);
    }
    let fp = ssh_key::PublicKey::from_openssh(&key)
        .ok()?
        .fingerprint(Default::default())
        .to_string();
    prints.contains(&fp).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &str, fp: &str) -> String {
        format!(
            "[   12.3] cloud-init[1234]: Cloud-init v. 22.2.2 running 'modules:final'\n\
             ec2: \n\
             ec2: #############################################################\n\
             ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
             ec2: 256 SHA256:AAAAtheecdsaoneAAAAAAAAAAAAAAAAAAAAAAAAAAAA root@ip-172-31-1-2.ec2.internal (ECDSA)\n\
             ec2: 256 {fp} root@ip-172-31-1-2.ec2.internal (ED25519)\n\
             ec2: -----END SSH HOST KEY FINGERPRINTS-----\n\
             ec2: #############################################################\n\
             -----BEGIN SSH HOST KEY KEYS-----\n\
             ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF root@ip-172-31-1-2.ec2.internal\n\
             {key} root@ip-172-31-1-2.ec2.internal\n\
             -----END SSH HOST KEY KEYS-----\n\
             [   13.0] cloud-init[1234]: Cloud-init v. 22.2.2 finished\n"
        )
    }

    #[test]
    fn finds_the_ed25519_key_cloud_init_printed_and_checks_its_fingerprint() {
        let kp = crate::transport::ssh::KeyPair::generate("host").unwrap();
        let line = kp.public_openssh();
        let key: Vec<&str> = line.split_whitespace().take(2).collect();
        let key = key.join(" ");
        let text = sample(&key, &kp.fingerprint());
        assert_eq!(host_key(&text).as_deref(), Some(key.as_str()));
        assert_eq!(fingerprints(&text).len(), 2);
        assert_eq!(trusted_host_key(&text).as_deref(), Some(key.as_str()));

        let other = crate::transport::ssh::KeyPair::generate("x").unwrap();
        let mismatched = sample(&key, &other.fingerprint());
        assert_eq!(trusted_host_key(&mismatched), None, "fingerprints disagree");
        assert_eq!(host_key("no keys here"), None);
    }

    #[test]
    fn decodes_base64_console_output_and_keeps_a_tail() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("a\n\x1b[0mb\n\nc\n");
        let text = decode(&encoded);
        assert_eq!(crate::cloud::console_tail(&text, 2), "[0mb\nc");
        assert_eq!(decode("plain text!"), "plain text!");
    }
}
