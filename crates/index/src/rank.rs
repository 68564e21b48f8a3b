//! Ranking helpers: reciprocal rank fusion of several ranked lists, and a user's words as an FTS5
//! query that cannot be a syntax error.

use std::collections::HashMap;

use crate::index::Hit;

/// Reciprocal rank fusion's constant (Cormack, Clarke & Büttcher 2009): a hit at rank `r` (1-based)
/// of a list adds `1 / (K + r)`.
pub const RRF_K: f32 = 60.0;

/// The lists fused by reciprocal rank, best first, at most `k`. A chunk in several lists is one
/// hit (the first list's copy, so a semantic hit keeps its cosine); ties go to the earlier list's
/// order.
pub(crate) fn fuse(lists: &[Vec<Hit>], k: usize) -> Vec<Hit> {
    let mut score: HashMap<i64, (f32, usize, Hit)> = HashMap::new();
    let mut order = 0;
    for list in lists {
        for (rank, h) in list.iter().enumerate() {
            let add = 1.0 / (RRF_K + (rank + 1) as f32);
            let key = h.id;
            score
                .entry(key)
                .and_modify(|(s, _, kept)| {
                    *s += add;
                    kept.cosine = kept.cosine.or(h.cosine);
                })
                .or_insert_with(|| {
                    order += 1;
                    (add, order, h.clone())
                });
        }
    }
    let mut out: Vec<(f32, usize, Hit)> = score.into_values().collect();
    out.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    out.truncate(k);
    out.into_iter()
        .map(|(s, _, h)| Hit { score: s, ..h })
        .collect()
}

/// The words of `query` as an FTS5 query matching any of them (BM25 ranks chunks with more and
/// rarer ones higher): each word quoted, so operators and punctuation in the query are plain text.
/// `None` when the query has no word at all.
///
/// ```
/// # use sembed_index::rank::fts_query;
/// assert_eq!(fts_query("foo-bar OR \"x\"").as_deref(), Some("\"foo\" OR \"bar\" OR \"OR\" OR \"x\""));
/// assert_eq!(fts_query(" -- "), None);
/// ```
pub fn fts_query(query: &str) -> Option<String> {
    let words: Vec<String> = words(query).map(|w| format!("\"{w}\"")).collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

/// The words of a text as FTS5's `unicode61` tokenizer sees them, near enough: runs of letters and
/// digits (a quote can never be part of one).
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, start: usize, score: f32) -> Hit {
        Hit {
            id: path.bytes().map(i64::from).sum::<i64>() * 1000 + start as i64,
            path: path.into(),
            start_line: 1,
            end_line: 1,
            bytes: start..start + 1,
            score,
            cosine: None,
            text: String::new(),
        }
    }

    #[test]
    fn fusion_rewards_agreement() {
        let sem = vec![hit("a", 0, 0.9), hit("b", 0, 0.8), hit("c", 0, 0.7)];
        let lex = vec![hit("c", 0, 5.0), hit("d", 0, 4.0), hit("b", 0, 3.0)];
        let f = fuse(&[sem, lex], 10);
        let names: Vec<_> = f
            .iter()
            .map(|h| h.path.to_str().unwrap().to_string())
            .collect();
        // b: 1/62 + 1/63, c: 1/63 + 1/61, a: 1/61, d: 1/62.
        assert_eq!(names, ["c", "b", "a", "d"]);
        assert!((f[0].score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert_eq!(fuse(&[vec![hit("a", 0, 1.0)], vec![]], 0).len(), 0);
    }

    #[test]
    fn queries_are_always_valid() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(x); INSERT INTO t VALUES ('the NEAR cat');",
        )
        .unwrap();
        for q in [
            "NEAR(",
            "\"",
            "a*",
            "x AND",
            "col:val",
            "^start",
            "c'est l'été",
            "日本語",
        ] {
            let Some(q) = fts_query(q) else { continue };
            conn.query_row("SELECT count(*) FROM t WHERE t MATCH ?1", [q], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        }
    }
}
