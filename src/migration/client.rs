//! The calling client named by a `User-Agent`: the product and version of a
//! known OpenStack client, else of the HTTP library beneath it, else `other`.
//! keystoneauth1 writes `<app>/<version> keystoneauth1/<v> python-requests/<v>
//! CPython/<v>`, so the application comes first when there is one.

/// Products named in the order they are preferred: the application, then the
/// session library, then the HTTP tool.
const KNOWN: &[&str] = &[
    "python-novaclient",
    "python-glanceclient",
    "python-openstackclient",
    "openstacksdk",
    "gophercloud",
    "terraform-provider-openstack",
    "keystoneauth1",
    "curl",
    "python-requests",
    "go-http-client",
    "wget",
];

/// The longest version kept: a User-Agent is the client's to choose, the
/// usage table must stay readable.
const MAX_VERSION: usize = 32;

/// `product/version` (or `product` when no usable version is given) of the
/// best-known product in `user_agent`; `other` when none is known.
pub fn parse(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "other".into();
    };
    let tokens: Vec<(&str, Option<&str>)> = ua
        .split_whitespace()
        .map(|t| match t.split_once('/') {
            Some((name, version)) => (name, Some(version)),
            None => (t, None),
        })
        .collect();
    for known in KNOWN {
        let found = tokens.iter().find(|(name, _)| name.eq_ignore_ascii_case(known));
        if let Some((name, version)) = found {
            let name = name.to_ascii_lowercase();
            return match version.filter(|v| valid_version(v)) {
                Some(v) => format!("{name}/{v}"),
                None => name,
            };
        }
    }
    "other".into()
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VERSION
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn clients_from_user_agents() {
        for (ua, client) in [
            (
                "python-novaclient/7.1.2 keystoneauth1/5.11.1 python-requests/2.32.5 CPython/3.11.2",
                "python-novaclient/7.1.2",
            ),
            (
                "openstacksdk/4.7.1 keystoneauth1/5.11.1 python-requests/2.32.5 CPython/3.11.2",
                "openstacksdk/4.7.1",
            ),
            (
                "keystoneauth1/5.11.1 python-requests/2.32.5 CPython/3.11.2",
                "keystoneauth1/5.11.1",
            ),
            ("python-glanceclient", "python-glanceclient"),
            ("curl/8.14.1", "curl/8.14.1"),
            ("Go-http-client/1.1", "go-http-client/1.1"),
            ("Mozilla/5.0 (X11; Linux x86_64)", "other"),
            ("", "other"),
            ("curl/<script>", "curl"),
            ("curl/1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17", "curl"),
        ] {
            assert_eq!(parse(Some(ua)), client, "{ua}");
        }
        assert_eq!(parse(None), "other");
    }
}
