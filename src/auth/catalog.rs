//! The service catalog of a Keystone token, and endpoints picked from it as
//! keystoneauth picks them (`ServiceCatalog.get_endpoints_data`): of the
//! services of the type asked for, the endpoints in the region asked for (any
//! region when none is), of the first interface in the order of preference
//! that has any; the first of those in catalog order.

use serde_json::Value;

/// One endpoint of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub service_type: String,
    pub url: String,
    pub interface: String,
    /// `region_id` (or the older `region`); empty when the endpoint has none.
    pub region: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog(Vec<Endpoint>);

impl Catalog {
    /// The catalog of a token document (`{"token": {"catalog": […]}}`);
    /// empty when it has none.
    pub fn from_token(body: &Value) -> Catalog {
        let mut all = Vec::new();
        for service in body["token"]["catalog"].as_array().into_iter().flatten() {
            let service_type = service["type"].as_str().unwrap_or("");
            for e in service["endpoints"].as_array().into_iter().flatten() {
                let url = e["url"].as_str().unwrap_or("");
                if url.is_empty() {
                    continue;
                }
                let region = e["region_id"].as_str().or_else(|| e["region"].as_str()).unwrap_or("");
                all.push(Endpoint {
                    service_type: service_type.to_string(),
                    url: url.to_string(),
                    interface: e["interface"].as_str().unwrap_or("").to_string(),
                    region: region.to_string(),
                });
            }
        }
        Catalog(all)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The endpoint of `service_type` for the first of `interfaces` that has
    /// one in `region` (empty: any region).
    pub fn find(&self, service_type: &str, interfaces: &[&str], region: &str) -> Option<&Endpoint> {
        let matching: Vec<&Endpoint> = self
            .0
            .iter()
            .filter(|e| e.service_type == service_type)
            .filter(|e| region.is_empty() || e.region == region)
            .collect();
        interfaces
            .iter()
            .find_map(|i| matching.iter().find(|e| e.interface == normalize(i)).copied())
    }
}

/// keystoneauth takes `publicURL` for `public` (the v2 spelling).
fn normalize(interface: &str) -> &str {
    interface.trim().strip_suffix("URL").unwrap_or(interface.trim())
}

/// An image endpoint as Nova uses it: a trailing `/vN` or `/vN.M` removed
/// (`re.sub(r'/v\d+(\.\d+)?/?$', '/', endpoint)`), and the trailing `/`.
pub fn unversioned(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let cut = trimmed.rsplit_once('/').and_then(|(head, last)| {
        let digits = last.strip_prefix('v')?;
        let (major, minor) = digits.split_once('.').unwrap_or((digits, "0"));
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (numeric(major) && numeric(minor) && head.contains("://")).then_some(head)
    });
    cut.unwrap_or(trimmed).trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_token(&serde_json::json!({"token": {"catalog": [
            {"type": "identity", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://ks:5000/v3"}]},
            {"type": "image", "endpoints": [
                {"interface": "public", "region_id": "Two", "url": "http://two-public:9292"},
                {"interface": "internal", "region_id": "Two", "url": "http://two-internal:9292"},
                {"interface": "public", "region_id": "One", "region": "One", "url": "http://one-public:9292/v2/"},
                {"interface": "admin", "region_id": "One", "url": "http://one-admin:9292"},
                {"interface": "internal", "region_id": "One", "url": ""}]}]}}))
    }

    #[test]
    fn endpoints_are_picked_as_keystoneauth_picks_them() {
        let c = catalog();
        assert_eq!(c.len(), 5);
        let pick = |ifs: &[&str], region: &str| c.find("image", ifs, region).map(|e| e.url.clone());
        // Any region: the first internal one of the catalog.
        assert_eq!(
            pick(&["internal", "public"], "").as_deref(),
            Some("http://two-internal:9292")
        );
        // Region One has no usable internal endpoint: public is next.
        assert_eq!(
            pick(&["internal", "public"], "One").as_deref(),
            Some("http://one-public:9292/v2/")
        );
        assert_eq!(pick(&["publicURL"], "Two").as_deref(), Some("http://two-public:9292"));
        assert_eq!(pick(&["admin"], "Two"), None);
        assert_eq!(pick(&["internal", "public"], "Three"), None);
        assert_eq!(pick(&["public"], "RegionOne"), None);
        assert_eq!(
            c.find("identity", &["internal", "public"], "").map(|e| e.url.as_str()),
            Some("http://ks:5000/v3")
        );
        assert!(Catalog::from_token(&serde_json::json!({"token": {}})).is_empty());
    }

    #[test]
    fn image_endpoints_lose_their_version_as_in_nova() {
        for (given, used) in [
            ("http://g:9292", "http://g:9292"),
            ("http://g:9292/", "http://g:9292"),
            ("http://g:9292/v2", "http://g:9292"),
            ("http://g:9292/v2.1/", "http://g:9292"),
            ("https://cloud/image/v2", "https://cloud/image"),
            ("https://cloud/image", "https://cloud/image"),
            ("http://g:9292/v2x", "http://g:9292/v2x"),
            ("http://v2", "http://v2"),
        ] {
            assert_eq!(unversioned(given), used, "{given}");
        }
    }
}
