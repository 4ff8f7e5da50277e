//! The `promote:` block: the pointer, the regions an image is copied to (each with its key), who
//! it is shared with, when copies are deprecated, and how many promoted images are kept.
//!
//! Every id is checked while the file is read, so a typo in an account id, an ARN, a region or
//! a key is a configuration error at its `file:line:col`, before anything starts.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::duration::HumanDuration;

/// The promote stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// The pointer set to the promoted image (an SSM parameter on AWS, published in every
    /// region; a pointer of the local store otherwise).
    pub pointer: String,
    /// How many promoted images of this pointer to keep per region; older ones are deleted,
    /// unless something still uses them.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// (aws) Regions the image is copied to, besides the one it was baked in. An entry is a
    /// region name, or `{region, kms_key}` to encrypt that region's copy with a key of yours.
    /// List the baking region with a `kms_key` to re-encrypt the image there too.
    #[serde(default)]
    pub regions: Vec<RegionTarget>,
    /// (aws) Who may launch the image (and copy its snapshots): accounts, organisations, OUs.
    #[serde(default)]
    pub share: Share,
    /// (aws) How long after promotion each copy is deprecated (hidden from new launches by
    /// default, still usable by id): `90d`, `26w`.
    #[serde(default)]
    pub deprecate_after: Option<HumanDuration>,
}

fn default_keep() -> usize {
    3
}

/// One region an image is distributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionTarget {
    /// `eu-west-1`.
    pub region: Region,
    /// The KMS key that encrypts this region's copy: `alias/name`, a key id, or a key or alias
    /// ARN in this region. Without one, a copy gets the region's default EBS key.
    pub kms_key: Option<KmsKey>,
}

impl JsonSchema for RegionTarget {
    fn schema_name() -> Cow<'static, str> {
        "RegionTarget".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let keys = generator.subschema_for::<RegionTargetKeys>();
        let region = generator.subschema_for::<Region>();
        json_schema!({
            "description": "A region name, or `{region, kms_key}`.",
            "anyOf": [region, keys]
        })
    }
}

/// A region written as a mapping.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RegionTargetKeys {
    /// `eu-west-1`.
    region: Region,
    /// The KMS key that encrypts this region's copy: `alias/name`, a key id, or a key or alias
    /// ARN in this region. Without one, a copy gets the region's default EBS key.
    #[serde(default)]
    kms_key: Option<KmsKey>,
}

impl<'de> Deserialize<'de> for RegionTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RegionTarget;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a region name such as `eu-west-1`, or `{region: eu-west-1, kms_key: alias/golden}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RegionTarget, E> {
                Ok(RegionTarget {
                    region: Region::parse(v).map_err(E::custom)?,
                    kms_key: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RegionTarget, A::Error> {
                let keys =
                    RegionTargetKeys::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if let Some(KmsKey(key)) = &keys.kms_key {
                    if let Some(in_region) = arn_region(key) {
                        if in_region != keys.region.0 {
                            return Err(de::Error::custom(format!(
                                "kms_key `{key}` is a key of region {in_region}, but this entry is for {}; a copy is encrypted with a key of its own region",
                                keys.region.0
                            )));
                        }
                    }
                }
                Ok(RegionTarget {
                    region: keys.region,
                    kms_key: keys.kms_key,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Who an image is shared with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// Account ids (12 digits) given launch permission, and permission to create volumes from
    /// the snapshots (so that they can copy the image).
    #[serde(default)]
    pub accounts: Vec<AccountId>,
    /// Organisation ARNs: `arn:aws:organizations::111122223333:organization/o-exampleorgid`.
    #[serde(default)]
    pub organizations: Vec<OrganizationArn>,
    /// Organisational unit ARNs:
    /// `arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdefgh34`.
    #[serde(default)]
    pub organizational_units: Vec<OuArn>,
}

impl Share {
    /// True when the image is shared with nobody.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.organizations.is_empty()
            && self.organizational_units.is_empty()
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a valid pattern"))
}

/// The region of a KMS ARN, if `key` is one.
fn arn_region(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (service == "kms").then_some(region)
}

macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $example:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub String);

        impl $name {
            /// Checks `s`; the error says what is wrong and what would work.
            pub fn parse(s: &str) -> Result<$name, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| $name(s.to_string())).map_err(|why| {
                    format!("`{s}` is not {}: {why}; for example `{}`", $what, $example)
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "{}, such as `{}`", $what, $example)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse(v).map_err(E::custom)
                    }
                    // An unquoted account id is a YAML number.
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        $name::parse(&v.to_string()).map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": concat!($what, ", such as `", $example, "`"),
                    "type": "string"
                })
            }
        }
    };
}

checked_string!(
    /// An AWS region name.
    Region,
    "a region name",
    "eu-west-1",
    |s| {
        static RE: OnceLock<Regex> = OnceLock::new();
        if re(&RE, r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$").is_match(s) {
            Ok(())
        } else {
            Err("regions look like `us-east-1`, `eu-central-2`, `us-gov-west-1`".into())
        }
    }
);

checked_string!(
    /// An AWS account id: 12 digits.
    AccountId,
    "an account id",
    "111122223333",
    |s| {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err("an account id is exactly 12 digits (quote it in YAML so that leading zeros stay)".into())
        }
    }
);

checked_string!(
    /// An organisation's ARN.
    OrganizationArn,
    "an organization ARN",
    "arn:aws:organizations::111122223333:organization/o-exampleorgid",
    |s| {
        static RE: OnceLock<Regex> = OnceLock::new();
        if re(&RE, r"^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$")
            .is_match(s)
        {
            Ok(())
        } else {
            Err("it has the shape arn:aws:organizations::<management account>:organization/o-<10 to 32 letters or digits>".into())
        }
    }
);

checked_string!(
    /// An organisational unit's ARN.
    OuArn,
    "an organizational unit ARN",
    "arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdefgh34",
    |s| {
        static RE: OnceLock<Regex> = OnceLock::new();
        if re(
            &RE,
            r"^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$",
        )
        .is_match(s)
        {
            Ok(())
        } else {
            Err("it has the shape arn:aws:organizations::<management account>:ou/o-<org id>/ou-<root>-<ou id>".into())
        }
    }
);

checked_string!(
    /// A KMS key: `alias/name`, a key id, or a key or alias ARN.
    KmsKey,
    "a KMS key",
    "alias/golden-images",
    |s| {
        static ALIAS: OnceLock<Regex> = OnceLock::new();
        static ID: OnceLock<Regex> = OnceLock::new();
        static ARN: OnceLock<Regex> = OnceLock::new();
        let alias = re(&ALIAS, r"^alias/[a-zA-Z0-9/_-]{1,250}$");
        let id = re(&ID, r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$");
        let arn = re(
            &ARN,
            r"^arn:aws[a-z-]*:kms:[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}:[0-9]{12}:(key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|alias/[a-zA-Z0-9/_-]{1,250})$",
        );
        if alias.is_match(s) || id.is_match(s) || arn.is_match(s) {
            Ok(())
        } else {
            Err("write `alias/<name>`, a key id (a UUID or `mrk-…`), or an ARN `arn:aws:kms:<region>:<account>:key/<id>` or `…:alias/<name>`".into())
        }
    }
);

impl KmsKey {
    /// True for the AWS-managed EBS key, which cannot be shared with other accounts.
    pub fn is_aws_managed(&self) -> bool {
        self.0 == "alias/aws/ebs" || self.0.ends_with(":alias/aws/ebs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Promote, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn regions_keys_and_sharing_are_read() {
        let p = parse(
            "pointer: /golden/latest\nregions:\n  - eu-west-1\n  - {region: us-west-2, kms_key: alias/golden}\n  - region: ap-southeast-2\n    kms_key: arn:aws:kms:ap-southeast-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\nshare:\n  accounts: ['012345678901']\n  organizations: [arn:aws:organizations::111122223333:organization/o-exampleorgid]\n  organizational_units: [arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdefgh34]\ndeprecate_after: 90d\n",
        )
        .unwrap();
        assert_eq!(p.keep, 3);
        assert_eq!(p.regions.len(), 3);
        assert_eq!(p.regions[0].region.0, "eu-west-1");
        assert_eq!(p.regions[0].kms_key, None);
        assert_eq!(p.regions[1].kms_key, Some(KmsKey("alias/golden".into())));
        assert_eq!(p.share.accounts, vec![AccountId("012345678901".into())]);
        assert_eq!(p.share.organizations.len(), 1);
        assert_eq!(p.share.organizational_units.len(), 1);
        assert_eq!(
            p.deprecate_after.unwrap().0,
            std::time::Duration::from_secs(90 * 86400)
        );
        // Unquoted, twelve digits still read as an account id (a leading zero stays: YAML
        // reads `012345678901` as a string).
        for (written, id) in [
            ("123456789012", "123456789012"),
            ("012345678901", "012345678901"),
        ] {
            let p = parse(&format!("pointer: /p\nshare: {{accounts: [{written}]}}\n")).unwrap();
            assert_eq!(p.share.accounts, vec![AccountId(id.into())]);
        }
    }

    #[test]
    fn bad_account_ids_are_refused_where_they_are() {
        for bad in [
            "'12345678901'",
            "'1234567890123'",
            "'12345678901a'",
            "12345678901",
        ] {
            let e = parse(&format!("pointer: /p\nshare:\n  accounts: [{bad}]\n")).unwrap_err();
            assert!(e.contains("is not an account id"), "{e}");
            assert!(e.contains("line 3 column"), "{e}");
        }
    }

    #[test]
    fn bad_organization_and_ou_arns_are_refused() {
        for (key, bad) in [
            (
                "organizations",
                "arn:aws:organizations::111122223333:organization/exampleorgid",
            ),
            (
                "organizations",
                "arn:aws:organizations::1111:organization/o-exampleorgid",
            ),
            (
                "organizations",
                "arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdefgh34",
            ),
            (
                "organizational_units",
                "arn:aws:organizations::111122223333:organization/o-exampleorgid",
            ),
            (
                "organizational_units",
                "arn:aws:organizations::111122223333:ou/o-exampleorgid/ab12-cdefgh34",
            ),
        ] {
            let e = parse(&format!("pointer: /p\nshare:\n  {key}:\n    - {bad}\n")).unwrap_err();
            assert!(e.contains("ARN"), "{key} {bad}: {e}");
            assert!(e.contains("line 4 column 7"), "{key} {bad}: {e}");
        }
    }

    #[test]
    fn bad_regions_are_refused() {
        for bad in ["eu-west", "EU-WEST-1", "euwest1", "eu-west-1a"] {
            let e = parse(&format!("pointer: /p\nregions: [{bad}]\n")).unwrap_err();
            assert!(e.contains("is not a region name"), "{bad}: {e}");
        }
        let e = parse("pointer: /p\nregions:\n  - region: mars-1\n").unwrap_err();
        assert!(e.contains("is not a region name"), "{e}");
        for good in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-4",
            "eu-central-2",
        ] {
            parse(&format!("pointer: /p\nregions: [{good}]\n")).unwrap();
        }
    }

    #[test]
    fn bad_kms_keys_are_refused_and_a_key_of_another_region_too() {
        for bad in [
            "golden",
            "alias/",
            "arn:aws:kms:eu-west-1:111122223333:golden",
            "1234abcd",
        ] {
            let e = parse(&format!(
                "pointer: /p\nregions:\n  - region: eu-west-1\n    kms_key: {bad}\n"
            ))
            .unwrap_err();
            assert!(e.contains("is not a KMS key"), "{bad}: {e}");
        }
        let e = parse(
            "pointer: /p\nregions:\n  - region: eu-west-1\n    kms_key: arn:aws:kms:us-east-1:111122223333:alias/golden\n",
        )
        .unwrap_err();
        assert!(e.contains("a key of region us-east-1"), "{e}");
        let e =
            parse("pointer: /p\nregions:\n  - region: eu-west-1\n    kms: alias/x\n").unwrap_err();
        assert!(e.contains("unknown field `kms`"), "{e}");
    }

    #[test]
    fn the_aws_managed_key_is_recognised() {
        assert!(KmsKey("alias/aws/ebs".into()).is_aws_managed());
        assert!(KmsKey("arn:aws:kms:eu-west-1:111122223333:alias/aws/ebs".into()).is_aws_managed());
        assert!(!KmsKey("alias/golden".into()).is_aws_managed());
    }
}
