//! Several replicas of the service writing to one real Glance: 3 replicas, 16
//! writers × 8 keys spread across them, for POST merges, PUT of one key, DELETE
//! of one key, PUT of the whole collection, and merges against the quota.
//! Merges and single-key writes must lose nothing; a collection PUT must leave
//! exactly one writer's collection; the quota must hold. Each mode's figures
//! (keys lost, writes refused) are printed. `NIP_REPLICA_ROUNDS` sets the
//! rounds (default 1, the quota test 2; `scripts/test` runs the suite with it unset, a longer run
//! is e.g. `NIP_REPLICA_ROUNDS=25 cargo test --test replicas -- --nocapture`).

mod support;

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

const REPLICAS: usize = 3;
const WRITERS: usize = 16;
const KEYS: usize = 8;

/// `NIP_REPLICA_ROUNDS`, or `default`.
fn rounds(default: usize) -> usize {
    std::env::var("NIP_REPLICA_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Fleet {
    glance: String,
    client: reqwest::Client,
    replicas: Vec<support::Service>,
}

impl Fleet {
    fn start(glance: &str, pairs: &[(&str, &str)]) -> Fleet {
        let backend = support::Backend::Glance(glance.to_string());
        Fleet {
            glance: glance.to_string(),
            client: support::client(),
            replicas: (0..REPLICAS).map(|_| support::start_on(&backend, pairs)).collect(),
        }
    }

    /// The replica writer `w` sends its `i`-th write to.
    fn replica(&self, w: usize, i: usize) -> &str {
        &self.replicas[(w + i) % REPLICAS].base
    }

    async fn new_image(&self, props: &Map<String, Value>) -> String {
        support::glance_image(&self.client, &self.glance, &Value::Object(props.clone())).await
    }

    /// The image's extra properties, as Glance itself has them (through a replica's metadata list).
    async fn metadata(&self, id: &str) -> Map<String, Value> {
        let (s, v) = support::send_json(
            &self.client,
            &self.replicas[0].base,
            "GET",
            &format!("/v2.1/images/{id}/metadata"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        v["metadata"].as_object().cloned().unwrap()
    }
}

fn key(w: usize, i: usize) -> String {
    format!("w{w:02}k{i}")
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Merge,
    PutKey,
    DeleteKey,
    PutAll,
}

/// Run every writer of one round of `mode` on image `id`; the statuses of all
/// writes (writer, write, status).
async fn round(fleet: &Arc<Fleet>, mode: Mode, id: &str) -> Vec<(usize, usize, u16)> {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (fleet, id) = (fleet.clone(), id.to_string());
            actix_web::rt::spawn(async move {
                let md = format!("/v2.1/images/{id}/metadata");
                let mut out = Vec::new();
                for i in 0..KEYS {
                    let k = key(w, i);
                    let (method, path, body) = match mode {
                        Mode::Merge => ("POST", md.clone(), Some(json!({"metadata": {k.clone(): "v"}}))),
                        Mode::PutKey => ("PUT", format!("{md}/{k}"), Some(json!({"meta": {k.clone(): "v"}}))),
                        Mode::DeleteKey => ("DELETE", format!("{md}/{k}"), None),
                        // Writer w's collection: its own two keys, the write's number as value.
                        Mode::PutAll => (
                            "PUT",
                            md.clone(),
                            Some(json!({"metadata": {format!("w{w:02}a"): format!("{i}"), format!("w{w:02}b"): format!("{i}")}})),
                        ),
                    };
                    let (s, _) = support::send_json(&fleet.client, fleet.replica(w, i), method, &path, body).await;
                    out.push((w, i, s));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[derive(Default, Debug)]
struct Figures {
    writes: usize,
    refused: usize,
    lost: usize,
}

#[actix_web::test]
async fn three_replicas_on_one_glance_lose_no_named_keys() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let rounds = rounds(1);
    let fleet = Arc::new(Fleet::start(&glance, &[("api.metadata_items", "-1")]));
    let all_keys: Map<String, Value> = (0..WRITERS)
        .flat_map(|w| (0..KEYS).map(move |i| (key(w, i), json!("v"))))
        .collect();
    let started = std::time::Instant::now();
    for mode in [Mode::Merge, Mode::PutKey, Mode::DeleteKey, Mode::PutAll] {
        let mut f = Figures::default();
        for _ in 0..rounds {
            // Glance keeps at most 128 properties: exactly the writers' keys.
            let mut seed = Map::new();
            if let Mode::DeleteKey = mode {
                seed.extend(all_keys.clone());
            }
            let id = fleet.new_image(&seed).await;
            let statuses = round(&fleet, mode, &id).await;
            f.writes += statuses.len();
            let refused: Vec<_> = statuses.iter().filter(|(_, _, s)| *s >= 300).collect();
            if refused.iter().any(|(_, _, s)| *s != 409) {
                eprintln!("replicas: {mode:?} refused (writer, write, status): {refused:?}");
            }
            f.refused += refused.len();
            let now = fleet.metadata(&id).await;
            match mode {
                Mode::Merge | Mode::PutKey => {
                    f.lost += all_keys.keys().filter(|k| !now.contains_key(*k)).count();
                }
                Mode::DeleteKey => {
                    f.lost += all_keys.keys().filter(|k| now.contains_key(*k)).count();
                }
                Mode::PutAll => {
                    // Exactly one writer's collection is left: count the keys
                    // that differ from the nearest one.
                    let keys: BTreeSet<&String> = now.keys().collect();
                    let off = (0..WRITERS)
                        .map(|w| {
                            let mine: BTreeSet<String> = [format!("w{w:02}a"), format!("w{w:02}b")].into();
                            let same_value = now.get(&format!("w{w:02}a")) == now.get(&format!("w{w:02}b"));
                            let diff = keys.iter().filter(|k| !mine.contains(**k)).count()
                                + mine.iter().filter(|k| !now.contains_key(*k)).count();
                            diff + usize::from(!same_value)
                        })
                        .min()
                        .unwrap_or(0);
                    f.lost += off;
                }
            }
        }
        eprintln!(
            "replicas: {REPLICAS} replicas, {WRITERS} writers x {KEYS} writes, {rounds} rounds, {mode:?}: \
             {} writes, {} refused, {} keys lost",
            f.writes, f.refused, f.lost
        );
        // A collection PUT that keeps meeting others' (after a few tries) is
        // refused with a 409; merges and single-key writes never are.
        if !matches!(mode, Mode::PutAll) {
            assert_eq!(f.refused, 0, "{mode:?}: writes refused");
        }
        assert_eq!(f.lost, 0, "{mode:?}: keys lost");
    }
    eprintln!("replicas: all modes in {:?}", started.elapsed());
}

/// Merges against the quota (`api.metadata_items = 16`) from 3 replicas: 16
/// writers each adding 2 keys at once to an empty image. The quota holds,
/// every write answered 200 is there, every write refused left nothing.
#[actix_web::test]
async fn three_replicas_keep_the_quota() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let rounds = rounds(2);
    let max = 16;
    let fleet = Arc::new(Fleet::start(&glance, &[("api.metadata_items", "16")]));
    let (mut over, mut accepted, mut wrong) = (0, 0, 0);
    for _ in 0..rounds {
        let id = fleet.new_image(&Map::new()).await;
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (fleet, id) = (fleet.clone(), id.clone());
                actix_web::rt::spawn(async move {
                    let body = json!({"metadata": {key(w, 0): "v", key(w, 1): "v"}});
                    let (s, _) = support::send_json(
                        &fleet.client,
                        fleet.replica(w, 0),
                        "POST",
                        &format!("/v2.1/images/{id}/metadata"),
                        Some(body),
                    )
                    .await;
                    (w, s)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let now = fleet.metadata(&id).await;
        over += now.len().saturating_sub(max);
        for (w, s) in answers {
            let there = [key(w, 0), key(w, 1)].iter().filter(|k| now.contains_key(*k)).count();
            match s {
                200 => {
                    accepted += 1;
                    wrong += 2 - there;
                }
                403 => wrong += there,
                other => panic!("writer {w}: {other}"),
            }
        }
    }
    eprintln!(
        "replicas: quota {max}, {WRITERS} writers x 2 keys, {rounds} rounds: {accepted} writes accepted, \
         {over} keys over the quota, {wrong} keys not as answered"
    );
    assert_eq!(wrong, 0, "keys not as the answers said");
    assert_eq!(over, 0, "the quota was exceeded");
}
