//! `[usage]` and `[deprecation]`: who still calls the deprecated surfaces
//! (Nova's images API, Glance v1), the headers that tell them, and the
//! brownout windows and retirement that switch the surfaces off in stages.
//! Times are RFC 3339 (`2027-01-31T00:00:00Z`). SIGHUP re-reads the whole
//! `[deprecation]` section; `[usage]` takes effect at the next start.

use super::validate::refuse;
use super::ConfigError;
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSettings {
    /// Count the calls of the deprecated surfaces (per surface, endpoint,
    /// project, user, client, microversion).
    pub enabled: bool,
    /// Most entries kept; the least recently seen is evicted past it (and counted).
    pub max_entries: usize,
    /// Distinct `client` values of `nova_images_proxy_deprecated_calls_total`;
    /// clients seen after the first ones are counted as `other`.
    pub metrics_clients: usize,
    /// Seconds between two writes of the counts to the embedded store's
    /// database (the counts are also written at a graceful stop).
    pub flush_secs: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeprecationSettings {
    /// When the surfaces were deprecated: `Deprecation: @<epoch seconds>` (RFC 9745)
    /// on their answers. Empty: no header.
    pub since: String,
    /// When they go away: `Sunset: <HTTP-date>` (RFC 8594). Empty: no header.
    pub sunset: String,
    /// `Link: <url>; rel="deprecation"`. Empty: none.
    pub link: String,
    /// `Link: <url>; rel="sunset"`. Empty: none.
    pub sunset_link: String,
    /// Every deprecated call answers 410 (except `exempt_projects`).
    pub retired: bool,
    /// Projects whose calls keep working when retired and in every brownout.
    pub exempt_projects: Vec<String>,
    /// Brownout windows.
    pub brownout: Vec<Brownout>,
    /// Testing only: an RFC 3339 time taken as "now" by the brownout windows.
    /// Empty: the system clock.
    pub clock: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brownout {
    pub start: String,
    pub end: String,
    /// Share of the calls refused in the window (0 < fraction ≤ 1).
    #[serde(default = "one")]
    pub fraction: f64,
    /// Only these projects are browned out. Empty: all.
    #[serde(default)]
    pub projects: Vec<String>,
    /// These projects are not.
    #[serde(default)]
    pub exempt_projects: Vec<String>,
}

fn one() -> f64 {
    1.0
}

/// An RFC 3339 time of option `name`.
pub fn time(name: &str, value: &str) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| refuse(name, value, "not an RFC 3339 time (e.g. \"2027-01-31T00:00:00Z\")"))
}

fn optional_time(name: &str, value: &str) -> Result<Option<DateTime<Utc>>, ConfigError> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        time(name, value).map(Some)
    }
}

impl DeprecationSettings {
    pub fn since_time(&self) -> Option<DateTime<Utc>> {
        optional_time("deprecation.since", &self.since).ok().flatten()
    }

    pub fn sunset_time(&self) -> Option<DateTime<Utc>> {
        optional_time("deprecation.sunset", &self.sunset).ok().flatten()
    }

    pub fn clock_time(&self) -> Option<DateTime<Utc>> {
        optional_time("deprecation.clock", &self.clock).ok().flatten()
    }
}

pub fn validate_usage(u: &UsageSettings) -> Result<(), ConfigError> {
    if u.max_entries == 0 {
        return Err(ConfigError::Invalid("usage.max_entries = 0: must be at least 1".into()));
    }
    if !(u.flush_secs.is_finite() && u.flush_secs > 0.0 && u.flush_secs < 1e6) {
        return Err(ConfigError::Invalid(format!(
            "usage.flush_secs = {}: not a positive number of seconds (below 1000000)",
            u.flush_secs
        )));
    }
    Ok(())
}

pub fn validate(d: &DeprecationSettings) -> Result<(), ConfigError> {
    let since = optional_time("deprecation.since", &d.since)?;
    let sunset = optional_time("deprecation.sunset", &d.sunset)?;
    optional_time("deprecation.clock", &d.clock)?;
    if let (Some(since), Some(sunset)) = (since, sunset) {
        if sunset < since {
            return Err(refuse(
                "deprecation.sunset",
                &d.sunset,
                &format!("earlier than deprecation.since = {:?}", d.since),
            ));
        }
    }
    for (name, value) in [
        ("deprecation.link", &d.link),
        ("deprecation.sunset_link", &d.sunset_link),
    ] {
        if !value.is_empty() {
            super::validate::web_url(name, value, &["http", "https"])?;
        }
    }
    for (i, b) in d.brownout.iter().enumerate() {
        let name = |field: &str| format!("deprecation.brownout[{i}].{field}");
        let start = time(&name("start"), &b.start)?;
        let end = time(&name("end"), &b.end)?;
        if end <= start {
            return Err(refuse(
                &name("end"),
                &b.end,
                &format!("not later than its start {:?}", b.start),
            ));
        }
        if !(b.fraction > 0.0 && b.fraction <= 1.0) {
            return Err(ConfigError::Invalid(format!(
                "{} = {}: must be above 0 and at most 1",
                name("fraction"),
                b.fraction
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeprecationSettings {
        crate::config::Settings::defaults().deprecation
    }

    #[test]
    fn sunset_before_deprecation_is_refused() {
        let mut d = settings();
        d.since = "2027-01-01T00:00:00Z".into();
        d.sunset = "2026-12-31T23:59:59Z".into();
        let e = validate(&d).unwrap_err().to_string();
        assert_eq!(
            e,
            "configuration: deprecation.sunset = \"2026-12-31T23:59:59Z\": earlier than deprecation.since = \"2027-01-01T00:00:00Z\""
        );
        d.sunset = "2027-01-01T00:00:00Z".into();
        validate(&d).unwrap();
    }

    #[test]
    fn brownouts_are_checked() {
        let mut d = settings();
        d.brownout = vec![Brownout {
            start: "2027-01-02T00:00:00Z".into(),
            end: "2027-01-01T00:00:00Z".into(),
            fraction: 1.0,
            projects: vec![],
            exempt_projects: vec![],
        }];
        assert!(validate(&d).unwrap_err().to_string().contains("brownout[0].end"));
        d.brownout[0].end = "2027-01-03T00:00:00Z".into();
        d.brownout[0].fraction = 0.0;
        assert!(validate(&d)
            .unwrap_err()
            .to_string()
            .contains("brownout[0].fraction = 0"));
        d.brownout[0].start = "tomorrow".into();
        assert!(validate(&d).unwrap_err().to_string().contains("not an RFC 3339 time"));
    }
}
