//! Several Glance API servers (`glance.url` = `http://a:9292,http://b:9292`),
//! used as Nova uses `[glance] api_servers`: each call starts at the next
//! server in turn (Nova shuffles the list for each call; taking turns spreads
//! the calls as evenly) and every retry of the call goes to the following one,
//! so a server that refuses connections costs one attempt, not the request.
//! Calls made outside the retry loop (uploads, metadata writes) go to the
//! server that answered last.

use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Servers {
    list: Vec<String>,
    turn: AtomicUsize,
    answered: AtomicUsize,
}

/// The servers of a `glance.url` value: comma-separated, trailing `/` dropped.
pub fn parse(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        // As URLs built on them will print (`http://g:80` is `http://g`).
        .map(|u| match url::Url::parse(u) {
            Ok(parsed) => parsed.as_str().trim_end_matches('/').to_string(),
            Err(_) => u.trim_end_matches('/').to_string(),
        })
        .collect()
}

impl Servers {
    pub fn new(urls: &str) -> Servers {
        let mut list = parse(urls);
        if list.is_empty() {
            list.push(String::new());
        }
        Servers {
            list,
            turn: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn get(&self, index: usize) -> &str {
        &self.list[index % self.list.len()]
    }

    /// The first server named (the base of `alternate` links).
    pub fn first(&self) -> &str {
        &self.list[0]
    }

    /// The server that answered last: the base of URLs a call is built on.
    pub fn current(&self) -> &str {
        &self.list[self.answered.load(Ordering::Relaxed) % self.list.len()]
    }

    /// Where a new call starts.
    pub fn start(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed) % self.list.len()
    }

    /// The server of attempt `attempt` of a call that started at `start`.
    pub fn of_attempt(&self, start: usize, attempt: u32) -> usize {
        (start + attempt as usize) % self.list.len()
    }

    /// `url` (built on any of the servers) moved to server `to`; `None`
    /// when it is on none of them, or on `to` already.
    pub fn rebase(&self, url: &url::Url, to: usize) -> Option<url::Url> {
        let text = url.as_str();
        let (on, rest) = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .find_map(|(i, s)| {
                text.strip_prefix(s.as_str())
                    .filter(|r| r.is_empty() || r.starts_with('/') || r.starts_with('?'))
                    .map(|r| (i, r))
            })?;
        if on == to {
            return None;
        }
        url::Url::parse(&format!("{}{rest}", self.list[to])).ok()
    }

    /// Server `index` answered (any HTTP answer).
    pub fn answered(&self, index: usize) {
        self.answered.store(index, Ordering::Relaxed);
    }

    pub fn names(&self) -> String {
        self.list.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_take_turns_and_retries_move_on() {
        let s = Servers::new("http://a:1/, http://b:2");
        assert_eq!(s.len(), 2);
        let (first, second) = (s.start(), s.start());
        assert_ne!(first, second);
        assert_eq!(s.of_attempt(first, 1), second);
        let url = url::Url::parse("http://a:1/v2/images?limit=1").unwrap();
        assert_eq!(s.rebase(&url, 1).unwrap().as_str(), "http://b:2/v2/images?limit=1");
        assert!(s.rebase(&url, 0).is_none(), "on server 0 already: kept as it is");
        s.answered(1);
        assert_eq!(s.current(), "http://b:2");
        assert_eq!(s.first(), "http://a:1");
    }
}
