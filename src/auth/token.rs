//! Token verdicts and their cache: who a token stands for, what Keystone said
//! about it, and how long that may be remembered. A token is never stored:
//! the cache key is its SHA-256, and log lines name it by the first 16 hex
//! digits of that hash.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who a valid token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    /// Empty for a token not scoped to a project (unscoped, domain or system scope).
    pub project_id: String,
    pub roles: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// What Keystone said about a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid(Arc<Identity>),
    Invalid,
}

/// The cache key of a token: its SHA-256 (the token itself is never stored).
pub type TokenKey = [u8; 32];

pub fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// How a token is named in logs: the first 16 hex digits of its SHA-256.
pub fn token_tag(key: &TokenKey) -> String {
    key[..8].iter().map(|b| format!("{b:02x}")).collect()
}

struct Entry {
    verdict: Verdict,
    until: Instant,
}

/// Token verdicts, each kept for at most `ttl` and a valid one never beyond
/// its token's expiry; at most `max` entries.
pub struct TokenCache {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<TokenKey, Entry>>,
}

impl TokenCache {
    pub fn new(ttl: Duration, max: usize) -> Self {
        TokenCache {
            ttl,
            max: max.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached verdict, if still fresh at `now` (an expired entry is dropped).
    pub fn get(&self, key: &TokenKey, now: Instant, now_utc: DateTime<Utc>) -> Option<Verdict> {
        let mut entries = self.lock();
        let fresh = match entries.get(key) {
            None => return None,
            Some(e) => {
                now < e.until
                    && match &e.verdict {
                        Verdict::Valid(id) => id.expires_at > now_utc,
                        Verdict::Invalid => true,
                    }
            }
        };
        if fresh {
            entries.get(key).map(|e| e.verdict.clone())
        } else {
            entries.remove(key);
            None
        }
    }

    /// How long a verdict reached at `now_utc` may be cached.
    pub fn lifetime(&self, verdict: &Verdict, now_utc: DateTime<Utc>) -> Duration {
        match verdict {
            Verdict::Invalid => self.ttl,
            Verdict::Valid(id) => {
                let left = (id.expires_at - now_utc).to_std().unwrap_or(Duration::ZERO);
                self.ttl.min(left)
            }
        }
    }

    /// Remember `verdict` from `now`; nothing is stored when its lifetime is zero.
    pub fn insert(&self, key: TokenKey, verdict: Verdict, now: Instant, now_utc: DateTime<Utc>) {
        let lifetime = self.lifetime(&verdict, now_utc);
        if lifetime.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.until);
            if entries.len() >= self.max {
                // Still full of live entries: drop the one closest to its end.
                if let Some(victim) = entries.iter().min_by_key(|(_, e)| e.until).map(|(k, _)| *k) {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                verdict,
                until: now + lifetime,
            },
        );
    }

    /// `auth.cache_secs`: the longest a verdict is kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(expires_at: DateTime<Utc>) -> Verdict {
        Verdict::Valid(Arc::new(Identity {
            user_id: "u".into(),
            project_id: "p".into(),
            roles: vec!["member".into()],
            expires_at,
        }))
    }

    fn t0() -> (Instant, DateTime<Utc>) {
        (
            Instant::now(),
            DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().to_utc(),
        )
    }

    #[test]
    fn a_verdict_lives_cache_secs() {
        let (now, utc) = t0();
        let cache = TokenCache::new(Duration::from_secs(300), 10);
        let k = token_key("a");
        let v = identity(utc + chrono::Duration::hours(1));
        cache.insert(k, v.clone(), now, utc);
        assert_eq!(cache.get(&k, now, utc), Some(v.clone()));
        let later = Duration::from_secs(299);
        assert_eq!(
            cache.get(&k, now + later, utc + chrono::Duration::seconds(299)),
            Some(v)
        );
        let gone = Duration::from_secs(300);
        assert_eq!(cache.get(&k, now + gone, utc + chrono::Duration::seconds(300)), None);
        assert!(cache.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn never_beyond_the_token_expiry() {
        let (now, utc) = t0();
        let cache = TokenCache::new(Duration::from_secs(300), 10);
        let k = token_key("a");
        let v = identity(utc + chrono::Duration::seconds(30));
        assert_eq!(cache.lifetime(&v, utc), Duration::from_secs(30));
        cache.insert(k, v.clone(), now, utc);
        assert_eq!(
            cache.get(&k, now + Duration::from_secs(29), utc + chrono::Duration::seconds(29)),
            Some(v.clone())
        );
        assert_eq!(
            cache.get(&k, now + Duration::from_secs(30), utc + chrono::Duration::seconds(30)),
            None
        );
        // The wall clock moving past the expiry ends the entry as well.
        cache.insert(k, v, now, utc);
        assert_eq!(cache.get(&k, now, utc + chrono::Duration::seconds(31)), None);
        // An already expired identity is not stored.
        cache.insert(k, identity(utc - chrono::Duration::seconds(1)), now, utc);
        assert!(cache.is_empty());
    }

    #[test]
    fn invalid_tokens_are_cached_too_and_zero_means_no_cache() {
        let (now, utc) = t0();
        let cache = TokenCache::new(Duration::from_secs(10), 10);
        let k = token_key("garbage");
        cache.insert(k, Verdict::Invalid, now, utc);
        assert_eq!(cache.get(&k, now + Duration::from_secs(9), utc), Some(Verdict::Invalid));
        assert_eq!(cache.get(&k, now + Duration::from_secs(10), utc), None);
        let off = TokenCache::new(Duration::ZERO, 10);
        off.insert(k, identity(utc + chrono::Duration::hours(1)), now, utc);
        off.insert(k, Verdict::Invalid, now, utc);
        assert!(off.is_empty());
        assert_eq!(off.get(&k, now, utc), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let (now, utc) = t0();
        let cache = TokenCache::new(Duration::from_secs(300), 3);
        let exp = utc + chrono::Duration::hours(1);
        for (i, t) in ["a", "b", "c"].iter().enumerate() {
            cache.insert(token_key(t), identity(exp), now + Duration::from_secs(i as u64), utc);
        }
        assert_eq!(cache.len(), 3);
        // Full of live entries: the one ending first ("a") makes room.
        cache.insert(token_key("d"), identity(exp), now + Duration::from_secs(3), utc);
        assert_eq!(cache.len(), 3);
        let at = now + Duration::from_secs(4);
        assert_eq!(cache.get(&token_key("a"), at, utc), None);
        for t in ["b", "c", "d"] {
            assert!(cache.get(&token_key(t), at, utc).is_some(), "{t}");
        }
        // Expired entries go first, all of them.
        let late = now + Duration::from_secs(302);
        cache.insert(token_key("e"), identity(exp), late, utc);
        assert_eq!(cache.len(), 2, "b and c expired, d and e live");
        // Replacing an entry of a full cache evicts nothing.
        cache.insert(token_key("f"), identity(exp), late, utc);
        cache.insert(token_key("f"), Verdict::Invalid, late, utc);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&token_key("f"), late, utc), Some(Verdict::Invalid));
    }

    #[test]
    fn keys_and_tags_are_hashes() {
        let k = token_key("gAAAAABsecret");
        assert_eq!(k.len(), 32);
        let tag = token_tag(&k);
        assert_eq!(tag.len(), 16);
        assert!(!tag.contains("secret"));
        assert_eq!(token_tag(&token_key("abc")), "ba7816bf8f01cfea");
    }
}
