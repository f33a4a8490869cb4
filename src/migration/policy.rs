//! `[deprecation]` as the service applies it: the headers that tell clients
//! (`Deprecation`, `Sunset`, `Link`), and whether a deprecated call is
//! refused now (retired, or inside a brownout window) for its project.

use crate::config::deprecation::{Brownout, DeprecationSettings};
use actix_web::http::header::{HeaderName, HeaderValue};
use chrono::{DateTime, Utc};

/// Where the migration stands for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Served (with the headers when configured).
    Served,
    /// Refused: inside a brownout window.
    Brownout,
    /// Refused: the surfaces are retired.
    Retired,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Served => "served",
            Stage::Brownout => "brownout",
            Stage::Retired => "retired",
        }
    }
}

struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    fraction: f64,
    projects: Vec<String>,
    exempt: Vec<String>,
}

impl Window {
    fn from(b: &Brownout) -> Option<Window> {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        Some(Window {
            start: t(&b.start)?,
            end: t(&b.end)?,
            fraction: b.fraction,
            projects: b.projects.clone(),
            exempt: b.exempt_projects.clone(),
        })
    }

    fn covers(&self, now: DateTime<Utc>, project: &str) -> bool {
        self.start <= now
            && now < self.end
            && (self.projects.is_empty() || self.projects.iter().any(|p| p == project))
            && !self.exempt.iter().any(|p| p == project)
    }
}

/// The parsed `[deprecation]` section (validated at load).
pub struct Policy {
    pub settings: DeprecationSettings,
    headers: Vec<(HeaderName, HeaderValue)>,
    windows: Vec<Window>,
    clock: Option<DateTime<Utc>>,
}

/// `Deprecation: @<epoch seconds>` (RFC 9745).
pub fn deprecation_value(since: DateTime<Utc>) -> String {
    format!("@{}", since.timestamp())
}

/// `Sunset: <IMF-fixdate>` (RFC 8594, RFC 9110 §5.6.7).
pub fn sunset_value(sunset: DateTime<Utc>) -> String {
    sunset.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

impl Policy {
    pub fn new(settings: &DeprecationSettings) -> Policy {
        let mut headers = Vec::new();
        let mut add = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.push((HeaderName::from_static(name), v));
            }
        };
        if let Some(since) = settings.since_time() {
            add("deprecation", deprecation_value(since));
        }
        if let Some(sunset) = settings.sunset_time() {
            add("sunset", sunset_value(sunset));
        }
        if !settings.link.is_empty() {
            add("link", format!("<{}>; rel=\"deprecation\"", settings.link));
        }
        if !settings.sunset_link.is_empty() {
            add("link", format!("<{}>; rel=\"sunset\"", settings.sunset_link));
        }
        Policy {
            settings: settings.clone(),
            headers,
            windows: settings.brownout.iter().filter_map(Window::from).collect(),
            clock: settings.clock_time(),
        }
    }

    /// The headers every answer of a deprecated call carries (none by default).
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// Now, as the windows see it (`deprecation.clock` when a test sets it).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// Whether a deprecated call of `project` is served now; `draw` is a
    /// uniform number in [0, 1) deciding a brownout window's fraction.
    pub fn stage(&self, project: &str, draw: impl FnOnce() -> f64) -> Stage {
        if self.settings.exempt_projects.iter().any(|p| p == project) {
            return Stage::Served;
        }
        if self.settings.retired {
            return Stage::Retired;
        }
        let now = self.now();
        match self.windows.iter().find(|w| w.covers(now, project)) {
            Some(w) if w.fraction >= 1.0 || draw() < w.fraction => Stage::Brownout,
            _ => Stage::Served,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeprecationSettings {
        crate::config::Settings::defaults().deprecation
    }

    #[test]
    fn no_headers_by_default() {
        assert!(Policy::new(&settings()).headers().is_empty());
    }

    #[test]
    fn header_formats() {
        let mut s = settings();
        s.since = "2026-11-01T00:00:00Z".into();
        s.sunset = "2027-03-31T12:30:05+02:00".into();
        s.link = "https://docs.example.org/migrate".into();
        s.sunset_link = "https://docs.example.org/sunset".into();
        let p = Policy::new(&s);
        let got: Vec<(String, String)> = p
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let want = [
            ("deprecation", "@1793491200"),
            ("sunset", "Wed, 31 Mar 2027 10:30:05 GMT"),
            ("link", "<https://docs.example.org/migrate>; rel=\"deprecation\""),
            ("link", "<https://docs.example.org/sunset>; rel=\"sunset\""),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn windows_exemptions_and_retirement() {
        let mut s = settings();
        s.brownout = vec![Brownout {
            start: "2027-01-10T10:00:00Z".into(),
            end: "2027-01-10T11:00:00Z".into(),
            fraction: 0.5,
            projects: vec![],
            exempt_projects: vec!["ops".into()],
        }];
        s.exempt_projects = vec!["keep".into()];
        let at = |s: &DeprecationSettings, clock: &str, project: &str, draw: f64| {
            let mut s = s.clone();
            s.clock = clock.into();
            Policy::new(&s).stage(project, || draw)
        };
        assert_eq!(at(&s, "2027-01-10T09:59:59Z", "p", 0.0), Stage::Served);
        assert_eq!(at(&s, "2027-01-10T10:00:00Z", "p", 0.49), Stage::Brownout);
        assert_eq!(at(&s, "2027-01-10T10:00:00Z", "p", 0.5), Stage::Served);
        assert_eq!(at(&s, "2027-01-10T10:30:00Z", "ops", 0.0), Stage::Served);
        assert_eq!(at(&s, "2027-01-10T10:30:00Z", "keep", 0.0), Stage::Served);
        assert_eq!(at(&s, "2027-01-10T11:00:00Z", "p", 0.0), Stage::Served);
        s.brownout[0].projects = vec!["target".into()];
        assert_eq!(at(&s, "2027-01-10T10:30:00Z", "p", 0.0), Stage::Served);
        assert_eq!(at(&s, "2027-01-10T10:30:00Z", "target", 0.0), Stage::Brownout);
        s.retired = true;
        assert_eq!(at(&s, "2020-01-01T00:00:00Z", "p", 0.9), Stage::Retired);
        assert_eq!(at(&s, "2020-01-01T00:00:00Z", "keep", 0.9), Stage::Served);
    }
}
