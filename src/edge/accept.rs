//! `Accept` header matching as webob's `acceptable_offers` does it: each offer
//! gets the quality of the most specific matching media range; offers with
//! quality 0 are dropped; the rest are ordered by quality, then offer order.

/// Index (into `offers`) of the best acceptable offer, if any. An empty
/// header accepts nothing; an unparsable one accepts everything.
pub fn best_offer(header: &str, offers: &[&str]) -> Option<usize> {
    let ranked = acceptable(header, offers);
    ranked.first().copied()
}

pub fn acceptable(header: &str, offers: &[&str]) -> Vec<usize> {
    let header = header.trim();
    if header.is_empty() {
        return Vec::new();
    }
    let mut ranges = Vec::new();
    for part in header.split(',') {
        let mut params = part.split(';');
        let range = params.next().unwrap_or("").trim().to_ascii_lowercase();
        if range.is_empty() {
            continue;
        }
        let Some((typ, sub)) = range.split_once('/') else {
            // webob treats an invalid header as accepting every offer.
            return (0..offers.len()).collect();
        };
        let mut q = 1.0f32;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(1.0);
                }
            }
        }
        ranges.push((typ.trim().to_string(), sub.trim().to_string(), q));
    }
    let mut scored: Vec<(usize, f32)> = Vec::new();
    for (i, offer) in offers.iter().enumerate() {
        let (otyp, osub) = offer.split_once('/').unwrap_or((offer, ""));
        let mut best: Option<(u8, f32)> = None;
        for (typ, sub, q) in &ranges {
            let specificity = if typ == "*" && sub == "*" {
                1
            } else if typ == otyp && sub == "*" {
                2
            } else if typ == otyp && sub == osub {
                3
            } else {
                continue;
            };
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, *q));
            }
        }
        if let Some((_, q)) = best {
            if q > 0.0 {
                scored.push((i, q));
            }
        }
    }
    scored.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    scored.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_ranked_like_webob() {
        let offers = ["application/json", "application/vnd.openstack.compute+json"];
        assert_eq!(best_offer("", &offers), None);
        assert_eq!(best_offer("*/*", &offers), Some(0));
        assert_eq!(best_offer("application/vnd.openstack.compute+json", &offers), Some(1));
        assert_eq!(best_offer("application/json;q=0.5, application/*", &offers), Some(1));
        assert_eq!(best_offer("application/xml", &offers), None);
        assert_eq!(best_offer("text/html;q=0", &["text/html", "application/json"]), None);
        assert_eq!(best_offer("garbage", &offers), Some(0));
    }
}
