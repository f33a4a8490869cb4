//! The `/usage` page: server-rendered HTML with an inline SVG chart and no
//! external asset or script. The callers' table (most recently seen first),
//! then the calls per day of the last 30 days, stacked by client.

use super::policy::Policy;
use super::usage::{day_of, day_string, Report, DAYS};
use crate::edge::webob::html_escape;
use std::collections::BTreeMap;
use std::fmt::Write;

const COLOURS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;white-space:nowrap}\
th{background:#f0f0f0}td.n{text-align:right}.legend span{display:inline-block;margin-right:1em}\
.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}";

fn status(policy: &Policy) -> String {
    let s = &policy.settings;
    let mut parts = Vec::new();
    if s.retired {
        parts.push(format!("retired (exempt projects: {})", s.exempt_projects.len()));
    } else {
        parts.push(format!("{} brownout window(s) configured", s.brownout.len()));
    }
    for (name, value) in [("deprecated since", &s.since), ("sunset", &s.sunset)] {
        if !value.is_empty() {
            parts.push(format!("{name} {value}"));
        }
    }
    html_escape(&parts.join(" · "))
}

fn table(out: &mut String, report: &Report) {
    out.push_str(
        "<table id=\"callers\"><thead><tr><th>last seen</th><th>count</th><th>surface</th><th>endpoint</th>\
         <th>project</th><th>user</th><th>client</th><th>microversion</th><th>first seen</th></tr></thead><tbody>",
    );
    for r in &report.callers {
        let k = &r.key;
        let _ = write!(
            out,
            "<tr class=\"caller\"><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&r.last_seen),
            r.count,
            html_escape(&k.surface),
            html_escape(&k.endpoint),
            html_escape(&k.project),
            html_escape(&k.user),
            html_escape(&k.client),
            html_escape(&k.microversion),
            html_escape(&r.first_seen),
        );
    }
    out.push_str("</tbody></table>");
}

fn chart(out: &mut String, report: &Report, now: i64) {
    let last = day_of(now);
    let days: Vec<String> = (last - DAYS + 1..=last).map(day_string).collect();
    let mut clients: Vec<String> = report.daily.iter().map(|d| d.client.clone()).collect();
    clients.sort();
    clients.dedup();
    let mut per_day: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for d in &report.daily {
        per_day.insert((d.day.as_str(), d.client.as_str()), d.count);
    }
    let totals: Vec<u64> = days
        .iter()
        .map(|day| {
            clients
                .iter()
                .map(|c| per_day.get(&(day.as_str(), c.as_str())).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let (width, height, left, bottom, bar) = (760.0, 240.0, 50.0, 30.0, 20.0);
    let plot = height - bottom - 10.0;
    let _ = write!(
        out,
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\"><title>Deprecated calls per day and client, last {DAYS} days</title>\
         <line x1=\"{left}\" y1=\"10\" x2=\"{left}\" y2=\"{}\" stroke=\"#444\"/>\
         <line x1=\"{left}\" y1=\"{0}\" x2=\"{width}\" y2=\"{0}\" stroke=\"#444\"/>\
         <text x=\"{}\" y=\"20\" font-size=\"11\" text-anchor=\"end\">{max}</text>",
        height - bottom,
        left - 4.0,
    );
    for (i, day) in days.iter().enumerate() {
        let x = left + 4.0 + i as f64 * (bar + 3.0);
        let mut y = height - bottom;
        for (ci, client) in clients.iter().enumerate() {
            let n = per_day.get(&(day.as_str(), client.as_str())).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = plot * n as f64 / max as f64;
            y -= h;
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar}\" height=\"{h:.1}\" fill=\"{}\" \
                 data-day=\"{day}\" data-client=\"{}\" data-count=\"{n}\"><title>{day} {}: {n}</title></rect>",
                COLOURS[ci % COLOURS.len()],
                html_escape(client),
                html_escape(client),
            );
        }
        if i % 5 == 0 || i + 1 == days.len() {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                height - bottom + 14.0,
                &day[5..],
            );
        }
    }
    out.push_str("</svg><p class=\"legend\">");
    for (ci, client) in clients.iter().enumerate() {
        let _ = write!(
            out,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            COLOURS[ci % COLOURS.len()],
            html_escape(client)
        );
    }
    out.push_str("</p>");
}

/// The whole page for `report` at `now` (epoch seconds).
pub fn render(report: &Report, policy: &Policy, now: i64) -> String {
    let mut out = String::with_capacity(4096 + report.callers.len() * 256);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Deprecated API usage</title>\
         <link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head><body><h1>Deprecated API usage</h1>\
         <p id=\"summary\">Replica {} · {} caller(s) · {} evicted (at most {} kept) · {}</p><h2>Callers</h2>",
        html_escape(&report.replica),
        report.entries,
        report.evictions,
        report.max_entries,
        status(policy),
    );
    table(&mut out, report);
    let _ = write!(out, "<h2>Calls per day, last {DAYS} days</h2>");
    chart(&mut out, report, now);
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::usage::{Key, Usage};

    #[test]
    fn the_page_escapes_and_draws_every_day() {
        let u = Usage::new(10);
        let key = Key {
            surface: "nova".into(),
            endpoint: "images.show".into(),
            project: "<p>".into(),
            user: "u".into(),
            client: "curl/8".into(),
            microversion: "2.1".into(),
        };
        u.record(&key, "images.show", 86_400 * 100);
        let policy = Policy::new(&crate::config::Settings::defaults().deprecation);
        let page = render(&u.report("r"), &policy, 86_400 * 100 + 5);
        assert!(page.contains("<td>&lt;p&gt;</td>"));
        assert_eq!(page.matches("class=\"bar\"").count(), 1);
        assert!(page.contains("data-day=\"1970-04-11\" data-client=\"curl/8\" data-count=\"1\""));
        assert!(!page.contains("<script"));
    }
}
