//! Usage accounting of the deprecated surfaces: for each (surface, endpoint,
//! project, user, client, microversion) the count, first and last seen. At
//! most `usage.max_entries` entries: the least recently seen is evicted past
//! it, and evictions are counted. Calls per day and client are kept for the
//! last [`DAYS`] days. On the embedded store everything is written to
//! `usage.sqlite` in its data directory every `usage.flush_secs` and at a graceful stop, and read
//! back at start ([`super::store`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The maps a call touches hash with foldhash (hashbrown's default, seeded
/// per process): a six-string key hashed several times per call is most of
/// what accounting costs under SipHash.
type Hasher = hashbrown::DefaultHashBuilder;
type LinkedHashMap<K, V> = hashlink::LinkedHashMap<K, V, Hasher>;
type HashSet<K> = hashbrown::HashSet<K, Hasher>;

/// Days of per-day counts kept (the page's chart shows them).
pub const DAYS: i64 = 30;

/// Most clients counted per day; the others are counted as `other`.
pub const DAILY_CLIENTS: usize = 20;

#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Key {
    pub surface: String,
    pub endpoint: String,
    pub project: String,
    pub user: String,
    pub client: String,
    pub microversion: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub count: u64,
    /// Epoch seconds.
    pub first_seen: i64,
    pub last_seen: i64,
}

/// One row of the usage table, as `/usage` and the CLI show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub key: Key,
    pub count: u64,
    /// RFC 3339, UTC, seconds.
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Daily {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub client: String,
    pub count: u64,
}

/// What `/usage` answers in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Which replica answered (its compute listener's address).
    pub replica: String,
    pub max_entries: usize,
    pub entries: usize,
    pub evictions: u64,
    /// Sorted by last seen, most recent first.
    pub callers: Vec<Row>,
    /// Oldest day first.
    pub daily: Vec<Daily>,
}

/// What is to be written to the database since the last flush.
#[derive(Default)]
pub struct Changes {
    pub upserts: Vec<(Key, Stat)>,
    pub removed: Vec<Key>,
    pub daily: Vec<(i64, String, u64)>,
    pub evictions: u64,
    /// The oldest day still kept.
    pub first_day: i64,
}

#[derive(Default)]
struct State {
    entries: LinkedHashMap<Key, Stat>,
    evictions: u64,
    daily: BTreeMap<(i64, String), u64>,
    dirty: HashSet<Key>,
    removed: HashSet<Key>,
    daily_dirty: HashSet<(i64, String)>,
    /// The day each (client, endpoint) was last logged at `warn`.
    warned: LinkedHashMap<(String, &'static str), i64>,
}

pub struct Usage {
    max: usize,
    state: Mutex<State>,
}

/// What [`Usage::record`] tells its caller.
pub struct Recorded {
    /// The first call of this client to this endpoint today.
    pub first_today: bool,
}

pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(86_400)
}

pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn day_string(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

impl Usage {
    pub fn new(max: usize) -> Usage {
        Usage {
            max: max.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts, never a broken invariant.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one call of `key` at `now` (epoch seconds).
    pub fn record(&self, key: &Key, endpoint: &'static str, now: i64) -> Recorded {
        let mut st = self.lock();
        let day = day_of(now);
        match st.entries.get_mut(key) {
            Some(stat) => {
                stat.count += 1;
                stat.last_seen = stat.last_seen.max(now);
                st.entries.to_back(key);
            }
            None => {
                st.removed.remove(key);
                st.entries.insert(
                    key.clone(),
                    Stat {
                        count: 1,
                        first_seen: now,
                        last_seen: now,
                    },
                );
                while st.entries.len() > self.max {
                    if let Some((old, _)) = st.entries.pop_front() {
                        st.dirty.remove(&old);
                        st.removed.insert(old);
                        st.evictions += 1;
                    }
                }
            }
        }
        if !st.dirty.contains(key) {
            st.dirty.insert(key.clone());
        }
        let mut daily_key = (day, key.client.clone());
        match st.daily.get_mut(&daily_key) {
            Some(n) => *n += 1,
            None => {
                let today = st.daily.range((day, String::new())..(day + 1, String::new())).count();
                if today >= DAILY_CLIENTS {
                    daily_key.1 = "other".to_string();
                }
                *st.daily.entry(daily_key.clone()).or_insert(0) += 1;
            }
        }
        if !st.daily_dirty.contains(&daily_key) {
            st.daily_dirty.insert(daily_key.clone());
        }
        let first_kept = day - DAYS + 1;
        while st.daily.first_key_value().is_some_and(|((d, _), _)| *d < first_kept) {
            st.daily.pop_first();
        }
        // Warned per client, also one counted as `other` today.
        let warn_key = (key.client.clone(), endpoint);
        let first_today = st.warned.get(&warn_key) != Some(&day);
        if first_today {
            st.warned.replace(warn_key, day);
            while st.warned.len() > self.max {
                st.warned.pop_front();
            }
        }
        Recorded { first_today }
    }

    /// Entries read back from the database, least recently seen first.
    pub fn restore(&self, rows: Vec<(Key, Stat)>, daily: Vec<(i64, String, u64)>, evictions: u64) {
        let mut st = self.lock();
        for (key, stat) in rows {
            st.entries.insert(key, stat);
            while st.entries.len() > self.max {
                if let Some((old, _)) = st.entries.pop_front() {
                    st.removed.insert(old);
                    st.evictions += 1;
                }
            }
        }
        for (day, client, count) in daily {
            st.daily.insert((day, client), count);
        }
        st.evictions += evictions;
    }

    /// What changed since the last call.
    pub fn take_changes(&self, now: i64) -> Changes {
        let mut st = self.lock();
        let dirty: Vec<Key> = st.dirty.drain().collect();
        let upserts = dirty
            .into_iter()
            .filter_map(|k| st.entries.get(&k).map(|s| (k, *s)))
            .collect();
        let removed = st.removed.drain().collect();
        let daily_dirty: Vec<(i64, String)> = st.daily_dirty.drain().collect();
        let daily = daily_dirty
            .into_iter()
            .filter_map(|(d, c)| st.daily.get(&(d, c.clone())).map(|n| (d, c, *n)))
            .collect();
        Changes {
            upserts,
            removed,
            daily,
            evictions: st.evictions,
            first_day: day_of(now) - DAYS + 1,
        }
    }

    /// Put back changes that could not be written (they are written next time).
    pub fn requeue(&self, changes: Changes) {
        let mut st = self.lock();
        for (k, _) in changes.upserts {
            if st.entries.contains_key(&k) {
                st.dirty.insert(k);
            }
        }
        for k in changes.removed {
            if !st.entries.contains_key(&k) {
                st.removed.insert(k);
            }
        }
        for (d, c, _) in changes.daily {
            st.daily_dirty.insert((d, c));
        }
    }

    pub fn report(&self, replica: &str) -> Report {
        let st = self.lock();
        let mut callers: Vec<Row> = st
            .entries
            .iter()
            .rev()
            .map(|(k, s)| Row {
                key: k.clone(),
                count: s.count,
                first_seen: rfc3339(s.first_seen),
                last_seen: rfc3339(s.last_seen),
            })
            .collect();
        // Stable: within one second, the most recently seen (the end of the LRU order) first.
        callers.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        Report {
            replica: replica.to_string(),
            max_entries: self.max,
            entries: st.entries.len(),
            evictions: st.evictions,
            callers,
            daily: st
                .daily
                .iter()
                .map(|((d, c), n)| Daily {
                    day: day_string(*d),
                    client: c.clone(),
                    count: *n,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(project: &str, client: &str) -> Key {
        Key {
            surface: "nova".into(),
            endpoint: "images.show".into(),
            project: project.into(),
            user: "u".into(),
            client: client.into(),
            microversion: "2.1".into(),
        }
    }

    #[test]
    fn counts_first_and_last_seen() {
        let u = Usage::new(10);
        assert!(u.record(&key("p", "curl/8"), "images.show", 100).first_today);
        assert!(!u.record(&key("p", "curl/8"), "images.show", 200).first_today);
        u.record(&key("q", "curl/8"), "images.show", 150);
        let r = u.report("r");
        assert_eq!(r.callers.len(), 2);
        assert_eq!(r.callers[0].key.project, "p");
        assert_eq!(
            (r.callers[0].count, r.callers[0].first_seen.as_str()),
            (2, "1970-01-01T00:01:40Z")
        );
        assert_eq!(r.callers[0].last_seen, "1970-01-01T00:03:20Z");
        assert_eq!(
            r.daily,
            vec![Daily {
                day: "1970-01-01".into(),
                client: "curl/8".into(),
                count: 3
            }]
        );
    }

    #[test]
    fn the_least_recently_seen_is_evicted_and_counted() {
        let u = Usage::new(2);
        u.record(&key("a", "c"), "images.show", 1);
        u.record(&key("b", "c"), "images.show", 2);
        u.record(&key("a", "c"), "images.show", 3);
        u.record(&key("c", "c"), "images.show", 4);
        let r = u.report("r");
        let projects: Vec<&str> = r.callers.iter().map(|r| r.key.project.as_str()).collect();
        assert_eq!(projects, ["c", "a"]);
        assert_eq!(r.evictions, 1);
        let changes = u.take_changes(4);
        assert_eq!(changes.removed, vec![key("b", "c")]);
        assert_eq!(changes.upserts.len(), 2);
        assert!(u.take_changes(4).upserts.is_empty());
    }

    #[test]
    fn daily_clients_are_capped_and_old_days_dropped() {
        let u = Usage::new(1000);
        for i in 0..DAILY_CLIENTS + 5 {
            u.record(&key("p", &format!("c{i}")), "images.show", 86_400 * 40);
        }
        let r = u.report("r");
        assert_eq!(r.daily.len(), DAILY_CLIENTS + 1);
        assert_eq!(r.daily.iter().find(|d| d.client == "other").map(|d| d.count), Some(5));
        u.record(&key("p", "late"), "images.show", 86_400 * 80);
        assert!(u.report("r").daily.iter().all(|d| d.day == day_string(80)));
    }
}
