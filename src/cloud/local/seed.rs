//! cloud-init NoCloud seed data: how an instance learns its hostname, the run's login key and
//! the host key Bakery generated for it, without Bakery editing the disk.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::transport::ssh::KeyPair;

/// What goes into one instance's seed.
pub struct Seed<'a> {
    pub instance_id: &'a str,
    pub hostname: &'a str,
    pub user: &'a str,
    pub login_key: &'a KeyPair,
    pub host_key: &'a KeyPair,
}

#[derive(Serialize)]
struct MetaData<'a> {
    #[serde(rename = "instance-id")]
    instance_id: &'a str,
    #[serde(rename = "local-hostname")]
    local_hostname: &'a str,
}

#[derive(Serialize)]
struct UserData<'a> {
    hostname: &'a str,
    disable_root: bool,
    ssh_pwauth: bool,
    users: Vec<serde_json::Value>,
    ssh_authorized_keys: Vec<String>,
    ssh_deletekeys: bool,
    ssh_genkeytypes: Vec<&'a str>,
    ssh_keys: SshKeys,
}

#[derive(Serialize)]
struct SshKeys {
    ed25519_private: String,
    ed25519_public: String,
}

impl Seed<'_> {
    /// The `user-data` document (`#cloud-config`).
    pub fn user_data(&self) -> String {
        // `users: [root]` keeps cloud-init from creating the distribution's default user; root
        // gets the key through `disable_root: false`. Any other user is created with
        // passwordless sudo, as cloud images' default users are.
        let users = if self.user == "root" {
            vec![serde_json::json!("root")]
        } else {
            vec![serde_json::json!({
                "name": self.user,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "shell": "/bin/bash",
                "ssh_authorized_keys": [self.login_key.public_openssh()],
            })]
        };
        let doc = UserData {
            hostname: self.hostname,
            disable_root: false,
            ssh_pwauth: false,
            users,
            ssh_authorized_keys: vec![self.login_key.public_openssh()],
            ssh_deletekeys: true,
            ssh_genkeytypes: vec!["ed25519"],
            ssh_keys: SshKeys {
                ed25519_private: self.host_key.private_openssh(),
                ed25519_public: self.host_key.public_openssh(),
            },
        };
        format!(
            "#cloud-config\n{}",
            serde_yaml::to_string(&doc).expect("user-data serializes")
        )
    }

    /// The `meta-data` document.
    pub fn meta_data(&self) -> String {
        serde_yaml::to_string(&MetaData {
            instance_id: self.instance_id,
            local_hostname: self.hostname,
        })
        .expect("meta-data serializes")
    }

    /// Writes the seed as an ISO 9660 image labelled `cidata` at `iso`.
    pub fn write_iso(&self, iso: &Path) -> Result<()> {
        let dir = iso.with_extension("d");
        std::fs::create_dir_all(&dir).at("creating", &dir)?;
        std::fs::write(dir.join("user-data"), self.user_data()).at("writing", &dir)?;
        std::fs::write(dir.join("meta-data"), self.meta_data()).at("writing", &dir)?;
        let output = Command::new("genisoimage")
            .args(["-quiet", "-volid", "cidata", "-joliet", "-rock", "-output"])
            .arg(iso)
            .arg(dir.join("user-data"))
            .arg(dir.join("meta-data"))
            .output()
            .map_err(|e| super::tools::missing("genisoimage", e))?;
        // The seed holds the host's private key: keep only the ISO, readable by us alone.
        std::fs::remove_dir_all(&dir).at("removing", &dir)?;
        if !output.status.success() {
            return Err(Error::Infra(format!(
                "genisoimage failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(iso, std::fs::Permissions::from_mode(0o600)).at("securing", iso)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_carries_both_keys_as_valid_yaml() {
        let login = KeyPair::generate("login").unwrap();
        let host = KeyPair::generate("host").unwrap();
        let seed = Seed {
            instance_id: "i-0123456789abcdef0",
            hostname: "builder",
            user: "root",
            login_key: &login,
            host_key: &host,
        };
        let text = seed.user_data();
        assert!(text.starts_with("#cloud-config\n"));
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(
            doc["ssh_authorized_keys"][0].as_str().unwrap(),
            login.public_openssh()
        );
        assert_eq!(
            doc["ssh_keys"]["ed25519_private"].as_str().unwrap(),
            host.private_openssh()
        );
        assert_eq!(doc["users"][0].as_str(), Some("root"));
        let meta: serde_yaml::Value = serde_yaml::from_str(&seed.meta_data()).unwrap();
        assert_eq!(meta["instance-id"].as_str().unwrap(), "i-0123456789abcdef0");
    }
}
