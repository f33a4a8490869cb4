//! `nova-images-proxy usage --url URL [--url URL…]`: the `/usage` tables of
//! one or more replicas, merged (counts added, the earliest first seen, the
//! latest last seen), as a terminal table or, with `--json`, as `/usage`'s JSON.

use super::usage::{Daily, Report, Row};
use std::collections::BTreeMap;

#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// A replica's metrics listener (`http://host:port`, or its `/usage` URL); repeat for each replica.
    #[arg(long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Order of the rows.
    #[arg(long, value_enum, default_value_t = Sort::Last)]
    pub sort: Sort,
    /// Print the merged table as JSON.
    #[arg(long)]
    pub json: bool,
    /// Token for `/usage` behind Keystone (an admin's).
    #[arg(long, env = "OS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds each replica has to answer.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Most recently seen first.
    Last,
    /// Most calls first.
    Count,
    Client,
    Project,
    Endpoint,
}

fn usage_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with(super::admin::PATH) {
        url.to_string()
    } else {
        format!("{url}{}", super::admin::PATH)
    }
}

/// The reports merged into one; `replica` names them all.
pub fn merge(reports: &[Report]) -> Report {
    let mut rows: BTreeMap<super::usage::Key, Row> = BTreeMap::new();
    let mut daily: BTreeMap<(String, String), u64> = BTreeMap::new();
    for report in reports {
        for r in &report.callers {
            rows.entry(r.key.clone())
                .and_modify(|m| {
                    m.count += r.count;
                    m.first_seen = m.first_seen.clone().min(r.first_seen.clone());
                    m.last_seen = m.last_seen.clone().max(r.last_seen.clone());
                })
                .or_insert_with(|| r.clone());
        }
        for d in &report.daily {
            *daily.entry((d.day.clone(), d.client.clone())).or_insert(0) += d.count;
        }
    }
    let callers: Vec<Row> = rows.into_values().collect();
    Report {
        replica: reports.iter().map(|r| r.replica.as_str()).collect::<Vec<_>>().join(","),
        max_entries: reports.iter().map(|r| r.max_entries).sum(),
        entries: callers.len(),
        evictions: reports.iter().map(|r| r.evictions).sum(),
        callers,
        daily: daily
            .into_iter()
            .map(|((day, client), count)| Daily { day, client, count })
            .collect(),
    }
}

pub fn sort(rows: &mut [Row], by: Sort) {
    rows.sort_by(|a, b| {
        let order = match by {
            Sort::Last => b.last_seen.cmp(&a.last_seen),
            Sort::Count => b.count.cmp(&a.count),
            Sort::Client => a.key.client.cmp(&b.key.client),
            Sort::Project => a.key.project.cmp(&b.key.project),
            Sort::Endpoint => a.key.endpoint.cmp(&b.key.endpoint),
        };
        order
            .then_with(|| b.last_seen.cmp(&a.last_seen))
            .then_with(|| a.key.cmp(&b.key))
    });
}

/// The rows as an aligned text table.
pub fn table(report: &Report) -> String {
    let header = [
        "LAST SEEN",
        "COUNT",
        "SURFACE",
        "ENDPOINT",
        "PROJECT",
        "USER",
        "CLIENT",
        "MICROVERSION",
        "FIRST SEEN",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in &report.callers {
        let k = &r.key;
        lines.push(vec![
            r.last_seen.clone(),
            r.count.to_string(),
            k.surface.clone(),
            k.endpoint.clone(),
            k.project.clone(),
            k.user.clone(),
            k.client.clone(),
            k.microversion.clone(),
            r.first_seen.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} caller(s) on {}; {} evicted\n",
        report.entries, report.replica, report.evictions
    ));
    out
}

async fn fetch(client: &reqwest::Client, url: &str, token: Option<&str>) -> Result<Report, String> {
    let mut req = client.get(usage_url(url)).header("accept", "application/json");
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not a usage report: {e}"))
}

/// Run the command; the text to print, or why it failed.
pub async fn run(args: &UsageArgs) -> Result<String, String> {
    let tls = crate::tls::ClientOptions {
        section: "usage",
        cafile: "",
        certfile: "",
        keyfile: "",
        insecure: false,
    };
    let client = crate::tls::http_client(&tls)?
        .timeout(std::time::Duration::from_secs_f64(args.timeout.max(0.1)))
        .build()
        .map_err(|e| e.to_string())?;
    let fetched =
        futures_util::future::join_all(args.urls.iter().map(|u| fetch(&client, u, args.token.as_deref()))).await;
    let reports: Vec<Report> = fetched.into_iter().collect::<Result<_, _>>()?;
    let mut merged = merge(&reports);
    sort(&mut merged.callers, args.sort);
    if args.json {
        serde_json::to_string_pretty(&merged).map_err(|e| e.to_string())
    } else {
        Ok(table(&merged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::usage::Usage;

    fn report(replica: &str, entries: &[(&str, i64)]) -> Report {
        let u = Usage::new(10);
        for (project, at) in entries {
            u.record(
                &crate::migration::usage::Key {
                    surface: "nova".into(),
                    endpoint: "images.show".into(),
                    project: project.to_string(),
                    user: "u".into(),
                    client: "curl/8".into(),
                    microversion: "2.1".into(),
                },
                "images.show",
                *at,
            );
        }
        u.report(replica)
    }

    #[test]
    fn replicas_are_merged() {
        let merged = merge(&[
            report("a", &[("p", 10), ("p", 20)]),
            report("b", &[("p", 5), ("q", 30)]),
        ]);
        assert_eq!(merged.entries, 2);
        let p = merged.callers.iter().find(|r| r.key.project == "p").unwrap();
        assert_eq!(
            (p.count, p.first_seen.as_str(), p.last_seen.as_str()),
            (3, "1970-01-01T00:00:05Z", "1970-01-01T00:00:20Z")
        );
        assert_eq!(merged.daily[0].count, 4);
        let mut rows = merged.callers.clone();
        sort(&mut rows, Sort::Count);
        assert_eq!(rows[0].key.project, "p");
        sort(&mut rows, Sort::Last);
        assert_eq!(rows[0].key.project, "q");
        assert!(table(&merged).starts_with("LAST SEEN             COUNT  SURFACE"));
    }
}
