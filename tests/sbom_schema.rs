//! The SBOM Bakery writes beside the JUnit file conforms to the published CycloneDX 1.5 JSON
//! schema: one made from captured manifest output here, the SBOM of a real baked image in
//! tests/local_pipeline.rs. A document that breaks the schema is refused, so the validation
//! cannot pass by checking nothing.

mod common;

use bakery::cloud::Image;
use common::*;

fn image() -> Image {
    Image {
        id: "ami-0123456789abcdef0".into(),
        name: "web-20261201-100000".into(),
        parent: None,
        tags: Default::default(),
        state: "available".into(),
        created: "2026-12-01T10:00:00Z".into(),
        size_bytes: 0,
    }
}

#[test]
fn the_sbom_of_a_captured_manifest_validates_against_the_cyclonedx_schema() {
    let text =
        std::fs::read_to_string(repo().join("src/manifest/testdata/debian-12-host.txt")).unwrap();
    let mut manifest = bakery::manifest::parse(&text).unwrap();
    // Epochs, `+` and `~` in versions must be encoded in the package URLs.
    manifest.packages.push(bakery::manifest::Package {
        name: "vim".into(),
        version: "2:9.0.1378-2+deb12u2~bpo1".into(),
        arch: "amd64".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let (manifest_path, sbom) = bakery::manifest::export(&manifest, &image(), &junit).unwrap();
    assert_eq!(sbom, dir.path().join("junit.cdx.json"));
    assert_eq!(manifest_path, dir.path().join("junit.manifest.json"));
    validate_cyclonedx(&sbom).unwrap_or_else(|e| panic!("{}: {e}", sbom.display()));

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sbom).unwrap()).unwrap();
    let vim = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "vim")
        .unwrap();
    assert_eq!(
        vim["purl"],
        "pkg:deb/debian/vim@2%3A9.0.1378-2%2Bdeb12u2~bpo1?arch=amd64&distro=debian-12"
    );

    // The same document with a component of a type the schema does not know is refused.
    let mut broken = doc.clone();
    broken["components"][0]["type"] = "not-a-type".into();
    let path = dir.path().join("broken.cdx.json");
    std::fs::write(&path, broken.to_string()).unwrap();
    let e = validate_cyclonedx(&path).unwrap_err();
    assert!(e.contains("not-a-type"), "{e}");
}
