//! Differential fuzzer: requests generated from a grammar (`fuzz_diff/grammar.rs`)
//! with a seed, sent in the same order to real Nova 34 on one real Glance 33 and
//! to the service on a second real Glance seeded identically. Answers are
//! compared as the oracle compares them (status, headers, body; request ids and
//! times masked); after every request that may write, the two Glances' view of
//! the image it names. Differences are grouped by route template, status pair
//! and differing fields; those README lists as deliberate are counted apart.
//!
//! `fuzz: N requests, E equal, D differ (U undocumented), S state divergences`;
//! the test fails when U or S is not 0. The suite runs `NIP_FUZZ_COUNT` (300)
//! requests of seed `NIP_FUZZ_SEED` (16); `scripts/fuzz-diff --count 10000 --seed S`
//! runs long ones.

mod support;

#[path = "fuzz_diff/deviations.rs"]
mod deviations;
#[path = "fuzz_diff/grammar.rs"]
mod grammar;
#[path = "fuzz_diff/state.rs"]
mod state;

use rand::SeedableRng;
use std::collections::BTreeMap;
use support::{capture, raw};

/// One answer, as compared.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

fn ask(base: &str, r: &grammar::Request) -> Answer {
    let headers: Vec<(&str, &[u8])> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    let bytes = raw::request(&r.method, r.target.as_bytes(), &headers, r.body.as_deref());
    match raw::exchange(base, &bytes) {
        Ok(resp) => {
            // Nova's uwsgi sends `Connection: close`; 204s are compared with
            // their Content-Length (a listed deviation).
            let headers = capture::normalize_headers(resp.headers.clone(), 0);
            Answer {
                status: resp.status,
                headers,
                body: capture::mask(&resp.text()),
            }
        }
        Err(e) => Answer {
            status: 0,
            headers: vec![],
            body: format!("no answer: {e}"),
        },
    }
}

/// The fields two answers differ in.
fn differing(nova: &Answer, ours: &Answer) -> Vec<String> {
    let mut out = Vec::new();
    if nova.status != ours.status {
        out.push("status".to_string());
    }
    let names: std::collections::BTreeSet<&String> = nova.headers.iter().chain(&ours.headers).map(|(k, _)| k).collect();
    for name in names {
        let values = |a: &Answer| {
            a.headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        if values(nova) != values(ours) {
            out.push(format!("header {name}"));
        }
    }
    if nova.body != ours.body {
        out.push("body".to_string());
    }
    out
}

#[derive(Default)]
struct Group {
    count: usize,
    documented: Option<&'static str>,
    example: String,
}

#[derive(Default)]
struct Report {
    requests: usize,
    equal: usize,
    differ: usize,
    undocumented: usize,
    state: usize,
    state_documented: usize,
    groups: BTreeMap<String, Group>,
}

impl Report {
    fn record(&mut self, key: String, documented: Option<&'static str>, example: impl FnOnce() -> String) {
        let g = self.groups.entry(key).or_default();
        g.count += 1;
        if g.count == 1 {
            g.documented = documented;
            g.example = example();
        }
    }

    fn print(&self) {
        for (key, g) in &self.groups {
            let tag = g
                .documented
                .map_or("UNDOCUMENTED".to_string(), |d| format!("listed: {d}"));
            println!("--- {} x {key} [{tag}]\n{}", g.count, g.example);
        }
        println!(
            "fuzz: {} requests, {} equal, {} differ ({} undocumented), {} state divergences (and {} listed ones)",
            self.requests,
            self.equal,
            self.differ,
            self.undocumented,
            self.state - self.state_documented,
            self.state_documented
        );
    }
}

fn show(a: &Answer) -> String {
    let mut body = a.body.clone();
    if body.len() > 600 {
        let mut cut = 600;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push('…');
    }
    format!("{} {:?}\n{body}", a.status, a.headers)
}

struct Run<'a> {
    nova: &'a str,
    service: &'a str,
    nova_glance: &'a str,
    service_glance: &'a str,
    /// Images whose extra properties were brought back to Nova's side.
    resynced: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Run<'_> {
    fn one(&self, report: &mut Report, r: &grammar::Request) {
        report.requests += 1;
        let nova = ask(self.nova, r);
        let ours = ask(self.service, r);
        let fields = differing(&nova, &ours);
        let listed = if fields.is_empty() {
            report.equal += 1;
            None
        } else {
            report.differ += 1;
            let listed = deviations::ANSWERS
                .iter()
                .find(|d| (d.matches)(r, &nova, &ours))
                .map(|d| d.name)
                .or_else(|| {
                    deviations::reordered(r, &nova, &ours, &self.resynced.borrow())
                        .then_some(deviations::RESYNCED_ORDER.0)
                });
            if listed.is_none() {
                report.undocumented += 1;
            }
            let key = format!(
                "{} {} | Nova {} / ours {} | {}",
                r.method,
                r.route,
                nova.status,
                ours.status,
                fields.join(", ")
            );
            report.record(key, listed, || {
                format!("{}\n  nova: {}\n  ours: {}", r.describe(), show(&nova), show(&ours))
            });
            listed
        };
        if let (true, Some(id)) = (r.may_write(), &r.image) {
            self.compare_state(report, id, listed, &format!("{} {}", r.method, r.route), || {
                r.describe()
            });
        }
    }

    fn compare_state(
        &self,
        report: &mut Report,
        id: &str,
        listed: Option<&'static str>,
        route: &str,
        what: impl FnOnce() -> String,
    ) {
        let theirs = state::image(self.nova_glance, id);
        let mine = state::image(self.service_glance, id);
        if theirs == mine {
            return;
        }
        report.state += 1;
        let documented = deviations::state_matches(&theirs.1, &mine.1).or(listed);
        if documented.is_some() {
            report.state_documented += 1;
        }
        let key = format!("STATE after {route} | Glance {} / {}", theirs.0, mine.0);
        report.record(key, documented, || {
            format!("after {}\n  nova's Glance: {}\n  ours: {}", what(), theirs.1, mine.1)
        });
        if state::resync(self.service_glance, id, &theirs.1, &mine.1) {
            self.resynced.borrow_mut().insert(id.to_string());
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_opt<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[actix_web::test]
async fn the_service_answers_random_requests_as_real_nova_does() {
    if std::env::var_os("NIP_SKIP_GLANCE").is_some() && std::env::var_os("NIP_REQUIRE_GLANCE").is_none() {
        support::skip("NIP_SKIP_GLANCE is set (the fuzzer needs two real Glances and real Nova)");
        return;
    }
    assert!(
        support::real::nova_installed(),
        "Nova is not installed: scripts/nova.sh install (scripts/test and scripts/fuzz-diff do)"
    );
    let count: usize = env_or("NIP_FUZZ_COUNT", 300);
    let seed: u64 = env_or("NIP_FUZZ_SEED", 16);
    let dir = tempfile::tempdir().expect("tempdir");
    // `--ports P` (NIP_FUZZ_PORTS): the Glances on P and P+1, Nova on P+20;
    // free loopback ports otherwise.
    let base: Option<u16> = env_opt("NIP_FUZZ_PORTS");
    let port = |offset: u16| base.map_or_else(support::process::free_port, |p| p + offset);
    // A Nova already running in front of the port its Glance is to have
    // (`scripts/fuzz-diff --nova URL --nova-glance-port PORT`), or one of our own.
    let given = std::env::var("NIP_FUZZ_NOVA_URL")
        .ok()
        .zip(env_opt::<u16>("NIP_FUZZ_NOVA_GLANCE_PORT"));
    let nova_glance_port = given.as_ref().map_or_else(|| port(0), |g| g.1);
    let nova_glance = support::real::glance(nova_glance_port, &dir.path().join("glance-nova"));
    let service_glance = support::real::glance(port(1), &dir.path().join("glance-service"));
    let client = support::client();
    let ids = support::seed::seed(&client, &nova_glance.url, 20).await;
    support::seed::seed(&client, &service_glance.url, 20).await;
    let own_nova = given
        .is_none()
        .then(|| support::real::nova(port(20), &dir.path().join("nova"), &nova_glance.url));
    let nova_url = given.map_or_else(|| own_nova.as_ref().expect("nova").url.clone(), |g| g.0);
    let service = support::start_on(
        &support::Backend::Glance(service_glance.url.clone()),
        &[("api.glance_link_prefix", nova_glance.url.as_str())],
    );

    let run = Run {
        nova: &nova_url,
        service: &service.base,
        nova_glance: &nova_glance.url,
        service_glance: &service_glance.url,
        resynced: Default::default(),
    };
    let grammar = grammar::Grammar { ids: ids.clone() };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let mut report = Report::default();
    let started = std::time::Instant::now();
    for _ in 0..count {
        let r = grammar.request(&mut rng);
        run.one(&mut report, &r);
    }
    // Every seeded image, written to or not.
    for id in &ids {
        run.compare_state(&mut report, id, None, "the run", || format!("the run ({id})"));
    }
    report.print();
    println!("fuzz: seed {seed}, {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(report.undocumented, 0, "undocumented differences from real Nova");
    assert_eq!(report.state - report.state_documented, 0, "state divergences");
}

#[test]
fn every_listed_deviation_is_in_readme() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let notes = readme
        .split("## Compatibility notes")
        .nth(1)
        .expect("compatibility notes");
    let readme_phrases = deviations::ANSWERS
        .iter()
        .map(|d| d.readme)
        .chain(deviations::STATE.iter().map(|s| s.1))
        .chain([deviations::RESYNCED_ORDER.1]);
    for phrase in readme_phrases {
        assert!(
            notes.contains(phrase),
            "README's compatibility notes do not say {phrase:?}"
        );
    }
}
