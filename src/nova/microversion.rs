//! Compute API microversions: header parsing as `microversion_parse.get_version`
//! and Nova's `Request.set_api_version_request` do it.

use std::fmt;

pub const STANDARD_HEADER: &str = "OpenStack-API-Version";
pub const LEGACY_HEADER: &str = "X-OpenStack-Nova-API-Version";

/// The lowest compute microversion.
pub const MIN: Version = Version { major: 2, minor: 1 };
/// Nova 34's newest microversion (the default maximum).
pub const NOVA_MAX: Version = Version { major: 2, minor: 104 };
/// `/images` (list, detail, show, delete) answer 404 from this version on.
pub const IMAGES_GONE: Version = Version { major: 2, minor: 36 };
/// `/images/{id}/metadata*` answer 404 from this version on.
pub const IMAGE_METADATA_GONE: Version = Version { major: 2, minor: 39 };

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Version {
    /// Parse `X.Y` with Nova's pattern `^([1-9]\d*)\.([1-9]\d*|0)$`.
    pub fn parse(s: &str) -> Option<Version> {
        let (major, minor) = s.split_once('.')?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) || major.starts_with('0') || (minor.starts_with('0') && minor != "0") {
            return None;
        }
        Some(Version {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

/// Whether `s` matches Nova's pattern `^([1-9]\d*)\.([1-9]\d*|0)$`.
fn well_formed(s: &str) -> bool {
    let Some((major, minor)) = s.split_once('.') else {
        return false;
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor) && !major.starts_with('0') && (!minor.starts_with('0') || minor == "0")
}

#[derive(Debug, PartialEq, Eq)]
pub enum VersionError {
    /// 400: `API Version String <s> is of invalid format. …`
    InvalidFormat(String),
    /// 406: outside [min, max]; the rejected version (as `X.Y`) is still echoed.
    NotSupported(String),
}

/// Pick the version string out of the request headers: the last `compute`
/// entry of `OpenStack-API-Version`, else the last value of the legacy header.
/// `headers` yields (name, value) pairs; repeated headers fold with `,`.
pub fn requested<'a>(headers: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Option<String> {
    let fold = |name: &str| -> Option<String> {
        let values: Vec<&str> = headers
            .clone()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    if let Some(std) = fold(STANDARD_HEADER) {
        for entry in std.split(',').rev() {
            let mut parts = entry.trim().splitn(2, |c: char| c.is_whitespace());
            if let (Some(service), Some(version)) = (parts.next(), parts.next()) {
                let version = version.trim();
                if service.eq_ignore_ascii_case("compute") && !version.is_empty() {
                    return Some(version.to_string());
                }
            }
        }
    }
    fold(LEGACY_HEADER).map(|v| v.rsplit(',').next().unwrap_or("").trim().to_string())
}

/// The effective version for a request: default 2.1, `latest` = `max`.
pub fn negotiate(requested: Option<&str>, max: Version) -> Result<Version, VersionError> {
    match requested {
        None => Ok(MIN),
        Some("latest") => Ok(max),
        Some(s) => match Version::parse(s) {
            Some(v) if v < MIN || v > max => Err(VersionError::NotSupported(v.to_string())),
            Some(v) => Ok(v),
            // Well-formed but too large for any counter: out of range, as in Nova
            // (Python integers have no limit).
            None if well_formed(s) => Err(VersionError::NotSupported(s.to_string())),
            None => Err(VersionError::InvalidFormat(s.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(h: &[(&str, &str)]) -> Option<String> {
        requested(h.iter().copied())
    }

    #[test]
    fn header_selection_follows_microversion_parse() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (&[], None),
            (&[("OpenStack-API-Version", "compute 2.3")], Some("2.3")),
            (&[("openstack-api-version", "volume 2.50, compute 2.3")], Some("2.3")),
            (&[("OpenStack-API-Version", "compute 2.4, compute 2.3")], Some("2.3")),
            (&[("OpenStack-API-Version", "volume 2.50")], None),
            (
                &[
                    ("OpenStack-API-Version", "volume 2.50"),
                    ("X-OpenStack-Nova-API-Version", "2.20"),
                ],
                Some("2.20"),
            ),
            (
                &[
                    ("OpenStack-API-Version", "compute 2.36"),
                    ("X-OpenStack-Nova-API-Version", "2.20"),
                ],
                Some("2.36"),
            ),
            (&[("X-OpenStack-Nova-API-Version", " 2.3 ")], Some("2.3")),
            (&[("X-OpenStack-Nova-API-Version", "2.2, 2.5")], Some("2.5")),
            (&[("X-OpenStack-Nova-API-Version", "")], Some("")),
            (&[("OpenStack-API-Version", "compute")], None),
        ];
        for (headers, expected) in cases {
            assert_eq!(pick(headers).as_deref(), *expected, "{headers:?}");
        }
    }

    #[test]
    fn negotiation_matches_nova() {
        let v = |s| Version::parse(s).unwrap();
        assert_eq!(negotiate(None, NOVA_MAX), Ok(MIN));
        assert_eq!(negotiate(Some("latest"), NOVA_MAX), Ok(NOVA_MAX));
        assert_eq!(negotiate(Some("2.35"), NOVA_MAX), Ok(v("2.35")));
        for bad in ["Latest", "2.a", "2.01", "2.1.3", "", "02.1", "2."] {
            assert_eq!(
                negotiate(Some(bad), NOVA_MAX),
                Err(VersionError::InvalidFormat(bad.into())),
                "{bad}"
            );
        }
        for out in ["3.0", "2.0", "2.999", "1.5", "99999999999999999999.1"] {
            assert_eq!(
                negotiate(Some(out), NOVA_MAX),
                Err(VersionError::NotSupported(out.into())),
                "{out}"
            );
        }
        assert_eq!(
            negotiate(Some("2.39"), v("2.38")),
            Err(VersionError::NotSupported("2.39".into()))
        );
        assert!(v("2.36") >= IMAGES_GONE && v("2.35") < IMAGES_GONE && v("2.10") > v("2.9"));
    }
}
