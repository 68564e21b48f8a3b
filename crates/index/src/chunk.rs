//! A file's text → chunks that fit the model: each at most `max_tokens` tokens (as the model
//! counts them, so nothing is ever cut by truncation), cut at paragraph boundaries where a whole
//! paragraph fits, else at line boundaries, and a line longer than the limit into pieces at
//! whitespace. Each chunk remembers its 1-based first and last line and its byte range. Chunking is
//! deterministic: the same text and settings give the same chunks, and [`CHUNKER_VERSION`] is part
//! of the index's key, so a change here re-chunks every file rather than mixing old and new cuts.

use std::ops::Range;

/// Bumped whenever a change here cuts the same text differently (2: a line's piece is never
/// moved back to a whitespace where that makes it over the limit).
pub const CHUNKER_VERSION: u32 = 2;

/// How files are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Most tokens of text per chunk (special tokens and prompt not included).
    pub max_tokens: usize,
    /// Tokens of the previous chunk's last lines repeated at the start of the next (whole lines;
    /// at most half of `max_tokens`).
    pub overlap_tokens: usize,
}

impl ChunkOptions {
    /// What the index keys files by besides their content: the version and the settings.
    pub fn key(&self) -> String {
        format!(
            "v{CHUNKER_VERSION}:max{}:overlap{}",
            self.max_tokens, self.overlap_tokens
        )
    }
}

/// One chunk of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 1-based, inclusive.
    pub start_line: usize,
    /// 1-based, inclusive.
    pub end_line: usize,
    /// Into the text: from the start of the first line to the end of the last (its line break
    /// excluded).
    pub bytes: Range<usize>,
}

/// A line of the text: its byte range (without the line break) and token count.
#[derive(Debug, Clone)]
struct Line {
    bytes: Range<usize>,
    tokens: usize,
}

fn lines(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let content_end = if text[start..end].ends_with('\r') {
            end - 1
        } else {
            end
        };
        out.push(start..content_end);
        start = end + 1;
    }
    out
}

/// Cuts `text`; `count` gives the model's token count of a piece of text (no specials).
///
/// ```
/// use sembed_index::chunk::{chunk, ChunkOptions};
/// let count = |s: &str| Ok::<_, std::convert::Infallible>(s.split_whitespace().count());
/// let opts = ChunkOptions { max_tokens: 4, overlap_tokens: 0 };
/// let text = "one two\nthree\n\nfour five six seven eight";
/// let c = chunk(text, &opts, &count).unwrap();
/// assert_eq!(c.len(), 3);
/// assert_eq!((c[0].start_line, c[0].end_line), (1, 3));
/// assert_eq!(&text[c[2].bytes.clone()], "eight");
/// ```
pub fn chunk<E>(
    text: &str,
    opts: &ChunkOptions,
    count: &dyn Fn(&str) -> Result<usize, E>,
) -> Result<Vec<Chunk>, E> {
    let budget = opts.max_tokens.max(1);
    let overlap = opts.overlap_tokens.min(budget / 2);
    // Lines with their counts; a line over the budget becomes several pieces (same line number).
    let mut units: Vec<(usize, Line)> = Vec::new(); // (0-based line index, piece)
    for (i, r) in lines(text).into_iter().enumerate() {
        let tokens = count(&text[r.clone()])?;
        if tokens <= budget {
            units.push((i, Line { bytes: r, tokens }));
        } else {
            for piece in split_line(text, r, budget, count)? {
                units.push((i, piece));
            }
        }
    }
    // Paragraphs: runs of units, each ended by a blank line (which stays with it).
    let blank = |u: &Line| text[u.bytes.clone()].trim().is_empty();
    let mut paragraphs: Vec<Range<usize>> = Vec::new(); // ranges into `units`
    let mut start = 0;
    for (k, (_, u)) in units.iter().enumerate() {
        if blank(u) {
            paragraphs.push(start..k + 1);
            start = k + 1;
        }
    }
    if start < units.len() {
        paragraphs.push(start..units.len());
    }
    let tokens_of = |r: Range<usize>| units[r].iter().map(|(_, u)| u.tokens).sum::<usize>();
    let mut packer = Packer {
        chunks: Vec::new(),
        cur: None,
        budget,
        overlap,
        tokens: units.iter().map(|(_, u)| u.tokens).collect(),
    };
    // Greedy: whole paragraphs while they fit, else the paragraph's units one by one.
    for p in paragraphs {
        let t = tokens_of(p.clone());
        if packer.fits(t) {
            packer.extend(p.end, t);
        } else if t <= budget {
            packer.start(p, t);
        } else {
            for k in p {
                let u = packer.tokens[k];
                if packer.fits(u) {
                    packer.extend(k + 1, u);
                } else {
                    packer.start(k..k + 1, u);
                }
            }
        }
    }
    let chunks = packer.finish();
    // The real count decides: a chunk the model counts over the budget (tokens across line breaks
    // need not add up) is cut again, in halves, down to single units. A chunk of blank lines only
    // (trailing ones) holds no text and goes, unless it is all the text has.
    let mut out = Vec::with_capacity(chunks.len());
    for r in chunks {
        let mut pending = vec![r];
        while let Some(r) = pending.pop() {
            let c = to_chunk(&units, r.clone());
            if r.len() > 1 && count(&text[c.bytes.clone()])? > budget {
                let mid = r.start + r.len() / 2;
                pending.push(mid..r.end);
                pending.push(r.start..mid);
                continue;
            }
            if !units[r].iter().all(|(_, u)| blank(u)) || out.is_empty() {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// Chunks being filled with units (their token counts in `tokens`).
struct Packer {
    chunks: Vec<Range<usize>>,
    /// The open chunk: its units and their tokens.
    cur: Option<(Range<usize>, usize)>,
    budget: usize,
    overlap: usize,
    tokens: Vec<usize>,
}

impl Packer {
    /// Whether `t` more tokens fit in the open chunk.
    fn fits(&self, t: usize) -> bool {
        self.cur.as_ref().is_some_and(|(_, n)| n + t <= self.budget)
    }

    /// The open chunk grows to unit `end` (exclusive), by `t` tokens.
    fn extend(&mut self, end: usize, t: usize) {
        if let Some((r, n)) = &mut self.cur {
            r.end = end;
            *n += t;
        }
    }

    /// Closes the open chunk and opens one with the units `new` (`need` tokens), starting with the
    /// closed chunk's last whole units as overlap (as many as fit beside `need`).
    fn start(&mut self, new: Range<usize>, need: usize) {
        let k = new.start;
        let (mut begin, mut taken) = (k, 0);
        if let Some((r, _)) = self.cur.take() {
            let mut back = r.end;
            while back > r.start + 1 {
                let u = self.tokens[back - 1];
                if taken + u > self.overlap || taken + u + need > self.budget {
                    break;
                }
                taken += u;
                back -= 1;
            }
            if self.overlap > 0 && back < r.end && r.end == k {
                begin = back;
            } else {
                taken = 0;
            }
            self.chunks.push(r);
        }
        self.cur = Some((begin..new.end, taken + need));
    }

    fn finish(mut self) -> Vec<Range<usize>> {
        if let Some((r, _)) = self.cur.take() {
            self.chunks.push(r);
        }
        self.chunks
    }
}

fn to_chunk(units: &[(usize, Line)], r: Range<usize>) -> Chunk {
    let (first, last) = (&units[r.start], &units[r.end - 1]);
    Chunk {
        start_line: first.0 + 1,
        end_line: last.0 + 1,
        bytes: first.1.bytes.start..last.1.bytes.end,
    }
}

/// Pieces of an over-long line, each within `budget` tokens: the longest prefix that fits (found
/// by bisection on character boundaries), moved back to the last whitespace when that keeps at
/// least half of it.
fn split_line<E>(
    text: &str,
    r: Range<usize>,
    budget: usize,
    count: &dyn Fn(&str) -> Result<usize, E>,
) -> Result<Vec<Line>, E> {
    let mut out = Vec::new();
    let mut at = r.start;
    while at < r.end {
        let rest = &text[at..r.end];
        let tokens = count(rest)?;
        if tokens <= budget {
            out.push(Line {
                bytes: at..r.end,
                tokens,
            });
            break;
        }
        // Character boundaries of `rest`, bisected for the longest prefix that fits.
        let bounds: Vec<usize> = rest
            .char_indices()
            .map(|(i, _)| i)
            .skip(1)
            .chain([rest.len()])
            .collect();
        let (mut lo, mut hi) = (0usize, bounds.len() - 1); // bounds[lo] fits (or lo = 0), bounds[hi] does not
        if count(&rest[..bounds[0]])? > budget {
            // A single character over the budget (never for a sane tokenizer): alone.
            let end = at + bounds[0];
            out.push(Line {
                bytes: at..end,
                tokens: count(&text[at..end])?,
            });
            at = end;
            continue;
        }
        while lo + 1 < hi {
            let mid = (lo + hi) / 2;
            if count(&rest[..bounds[mid]])? <= budget {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut cut = bounds[lo];
        if let Some(ws) = rest[..cut].rfind(char::is_whitespace)
            && ws > 0
            && ws >= cut / 2
        {
            // Only if the shorter piece fits too: a tokenizer need not count a prefix as fewer
            // tokens (BERT drops U+000B, which Rust calls whitespace, and can then read the words
            // around it as one unknown word; found by the fuzz target `chunker`).
            let back = ws + rest[ws..].chars().next().map_or(1, char::len_utf8);
            if count(&rest[..back])? <= budget {
                cut = back;
            }
        }
        let end = at + cut;
        out.push(Line {
            bytes: at..end,
            tokens: count(&text[at..end])?,
        });
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Result<usize, std::convert::Infallible> {
        Ok(s.split_whitespace().count())
    }

    fn cut(text: &str, max: usize, overlap: usize) -> Vec<Chunk> {
        chunk(
            text,
            &ChunkOptions {
                max_tokens: max,
                overlap_tokens: overlap,
            },
            &words,
        )
        .unwrap()
    }

    /// Every line in some chunk, no chunk over the limit, lines in order.
    fn check(text: &str, chunks: &[Chunk], max: usize) {
        let n = lines(text).len();
        let mut covered = vec![false; n];
        for c in chunks {
            assert!(words(&text[c.bytes.clone()]).unwrap() <= max, "{c:?}");
            assert!(c.start_line >= 1 && c.start_line <= c.end_line && c.end_line <= n);
            for l in c.start_line..=c.end_line {
                covered[l - 1] = true;
            }
        }
        assert!(covered.iter().all(|&c| c), "{covered:?}");
    }

    #[test]
    fn paragraphs_stay_whole_when_they_fit() {
        let text = "a b\nc d\n\ne f g\nh\n\ni j k l m";
        let c = cut(text, 6, 0);
        check(text, &c, 6);
        assert_eq!((c[0].start_line, c[0].end_line), (1, 3));
        assert_eq!((c[1].start_line, c[1].end_line), (4, 6));
        assert_eq!(&text[c[2].bytes.clone()], "i j k l m");
    }

    #[test]
    fn long_lines_are_split_at_whitespace() {
        let text = "w ".repeat(25).trim_end().to_string();
        let c = cut(&text, 10, 0);
        check(&text, &c, 10);
        assert_eq!(c.len(), 3);
        assert!(c.iter().all(|c| c.start_line == 1 && c.end_line == 1));
        // Byte ranges tile the line, in order.
        assert_eq!(c[0].bytes.start, 0);
        assert_eq!(c.last().unwrap().bytes.end, text.len());
        for w in c.windows(2) {
            assert_eq!(w[0].bytes.end, w[1].bytes.start);
        }
    }

    #[test]
    fn overlap_repeats_whole_lines() {
        let text = (1..=12)
            .map(|i| format!("l{i} x"))
            .collect::<Vec<_>>()
            .join("\n");
        let c = cut(&text, 6, 2);
        check(&text, &c, 6);
        for w in c.windows(2) {
            assert_eq!(
                w[1].start_line, w[0].end_line,
                "one line (2 tokens) repeated"
            );
        }
        let none = cut(&text, 6, 0);
        for w in none.windows(2) {
            assert_eq!(w[1].start_line, w[0].end_line + 1);
        }
    }

    #[test]
    fn odd_texts() {
        for text in [
            "",
            "\n",
            "\n\n\n",
            "   \n\t\n",
            "x",
            "é\r\nü\r\n",
            "\u{feff}a\u{0}b",
        ] {
            let c = cut(text, 3, 1);
            if !text.is_empty() {
                check(text, &c, 3);
            } else {
                assert!(c.is_empty());
            }
        }
        // Multi-byte characters are never split.
        let text = "日本語のテキスト".repeat(20);
        let c = chunk(
            &text,
            &ChunkOptions {
                max_tokens: 7,
                overlap_tokens: 0,
            },
            &|s: &str| Ok::<_, std::convert::Infallible>(s.chars().count()),
        )
        .unwrap();
        assert!(c.iter().all(|c| text.is_char_boundary(c.bytes.start)));
        assert_eq!(c.iter().map(|c| c.bytes.len()).sum::<usize>(), text.len());
    }

    /// A tokenizer may count a prefix as more tokens than a longer one; moving a cut back to a
    /// whitespace must not make a piece over the limit then.
    #[test]
    fn pieces_fit_even_when_a_shorter_prefix_counts_more() {
        // Text ending in U+000B counts 100; otherwise one per character.
        let count = |s: &str| {
            Ok::<_, std::convert::Infallible>(if s.ends_with('\u{b}') {
                100
            } else {
                s.chars().count()
            })
        };
        let text = "aaaa\u{b}bbbbbbbbbbb";
        let opts = ChunkOptions {
            max_tokens: 6,
            overlap_tokens: 0,
        };
        let c = chunk(text, &opts, &count).unwrap();
        for piece in &c {
            let t = &text[piece.bytes.clone()];
            assert!(count(t).unwrap() <= 6, "{t:?}");
        }
        assert_eq!(c.iter().map(|c| c.bytes.len()).sum::<usize>(), text.len());
    }

    #[test]
    fn deterministic() {
        let text = "some text\nmore\n\nand a paragraph\n".repeat(50);
        assert_eq!(cut(&text, 9, 3), cut(&text, 9, 3));
    }
}
