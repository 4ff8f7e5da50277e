//! The manifest as a CycloneDX 1.5 SBOM (JSON), built with the CycloneDX project's own crate
//! (`cyclonedx-bom`): the image is the BOM's subject (a `container` component), the OS is an
//! `operating-system` component, each package a `library` with its package URL
//! (`pkg:deb/debian/nginx-light@1.22.1-9%2Bdeb12u1?arch=amd64&distro=debian-12`, or `pkg:rpm/…`).

use cyclonedx_bom::models::component::Classification;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::models::tool::{Tool, Tools};
use cyclonedx_bom::prelude::*;

use super::Manifest;
use crate::cloud::Image;

/// The SBOM of `image`, whose contents `manifest` lists, as pretty-printed JSON; an error
/// says what the CycloneDX crate refused.
pub fn render(manifest: &Manifest, image: &Image) -> Result<String, String> {
    let distro = match (manifest.os.id.as_str(), manifest.os.version_id.as_str()) {
        ("", _) => None,
        (id, "") => Some(id.to_string()),
        (id, v) => Some(format!("{id}-{v}")),
    };
    let namespace = if manifest.os.id.is_empty() {
        "linux"
    } else {
        &manifest.os.id
    };
    let kind = match manifest.package_manager.as_str() {
        "rpm" => "rpm",
        _ => "deb",
    };
    let mut components = Vec::new();
    let os_ref = format!("os:{}", manifest.os.id);
    let mut os = Component::new(
        Classification::OperatingSystem,
        if manifest.os.id.is_empty() {
            "linux"
        } else {
            &manifest.os.id
        },
        &manifest.os.version_id,
        Some(os_ref),
    );
    os.description = (!manifest.os.pretty_name.is_empty())
        .then(|| NormalizedString::new(&manifest.os.pretty_name));
    os.properties = Some(Properties(vec![
        Property::new("bakery:kernel", &manifest.kernel.boots),
        Property::new("bakery:kernel-running", &manifest.kernel.running),
    ]));
    components.push(os);
    for p in &manifest.packages {
        let mut qualifiers = Vec::new();
        if !p.arch.is_empty() {
            qualifiers.push(format!("arch={}", encode(&p.arch)));
        }
        if let Some(d) = &distro {
            qualifiers.push(format!("distro={}", encode(d)));
        }
        let purl = format!(
            "pkg:{kind}/{}/{}@{}{}{}",
            encode(namespace),
            encode(&p.name),
            encode(&p.version),
            if qualifiers.is_empty() { "" } else { "?" },
            qualifiers.join("&")
        );
        let mut c = Component::new(
            Classification::Library,
            &p.name,
            &p.version,
            Some(format!("{}@{}:{}", p.name, p.version, p.arch)),
        );
        c.purl = purl.parse::<Purl>().ok();
        components.push(c);
    }
    let mut subject = Component::new(
        Classification::Container,
        &image.name,
        &image.id,
        Some(format!("image:{}", image.id)),
    );
    subject.description = Some(NormalizedString::new("a machine image baked by Bakery"));
    let timestamp = DateTime::try_from(if manifest.captured.is_empty() {
        crate::clock::now_rfc3339()
    } else {
        manifest.captured.clone()
    })
    .ok();
    let bom = Bom {
        serial_number: Some(UrnUuid::generate()),
        metadata: Some(Metadata {
            timestamp,
            tools: Some(Tools::List(vec![Tool::new(
                "Bakery",
                "bakery",
                env!("CARGO_PKG_VERSION"),
            )])),
            component: Some(subject),
            properties: Some(Properties(
                [
                    ("bakery:image-id", image.id.as_str()),
                    ("bakery:package-manager", manifest.package_manager.as_str()),
                ]
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| Property::new(k, v))
                .collect(),
            )),
            ..Metadata::default()
        }),
        components: Some(Components(components)),
        ..Bom::default()
    };
    let mut out = Vec::new();
    bom.output_as_json_v1_5(&mut out)
        .map_err(|e| format!("writing the CycloneDX SBOM of {}: {e}", image.id))?;
    Ok(String::from_utf8_lossy(&out).into_owned() + "\n")
}

/// Percent-encoding of a package URL segment: everything but letters, digits and `.-_~`.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_urls_are_percent_encoded() {
        assert_eq!(encode("1:2.36-9+deb12u9"), "1%3A2.36-9%2Bdeb12u9");
        assert_eq!(encode("debian-12"), "debian-12");
    }
}
