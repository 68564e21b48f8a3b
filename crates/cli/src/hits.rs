//! Search hits on stdout: as ripgrep prints matches (a heading, then numbered lines; `:` after
//! the number of a line shown for itself, `-` after a context line), or as JSON Lines.

use std::io::Write;

use anstyle::{AnsiColor, Style as Ansi};
use sembed_index::Hit;

/// Lines of a chunk shown for itself (the rest only as `-C` context).
const SHOWN: usize = 3;

/// Colours, if any.
pub struct Style {
    on: bool,
}

impl Style {
    pub fn new(on: bool) -> Style {
        Style { on }
    }

    fn paint(&self, style: Ansi, s: &str) -> String {
        if self.on {
            format!("{style}{s}{style:#}")
        } else {
            s.to_string()
        }
    }

    pub fn path(&self, s: &str) -> String {
        self.paint(Ansi::new().fg_color(Some(AnsiColor::Magenta.into())), s)
    }

    fn line_no(&self, s: &str) -> String {
        self.paint(Ansi::new().fg_color(Some(AnsiColor::Green.into())), s)
    }

    fn score(&self, s: &str) -> String {
        self.paint(Ansi::new().fg_color(Some(AnsiColor::Yellow.into())), s)
    }

    fn word(&self, s: &str) -> String {
        self.paint(Ansi::new().bold().fg_color(Some(AnsiColor::Red.into())), s)
    }
}

/// One JSON object: the fields the documentation promises first, in that order, then the rest.
#[derive(serde::Serialize)]
pub struct JsonHit<'a> {
    path: std::borrow::Cow<'a, str>,
    start_line: usize,
    end_line: usize,
    score: f32,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cosine: Option<f32>,
    start_byte: usize,
    end_byte: usize,
}

pub fn json(h: &Hit) -> JsonHit<'_> {
    JsonHit {
        path: h.path.to_string_lossy(),
        start_line: h.start_line,
        end_line: h.end_line,
        score: h.score,
        text: &h.text,
        cosine: h.cosine,
        start_byte: h.bytes.start,
        end_byte: h.bytes.end,
    }
}

/// `path:start-end: score`, then the chunk's most relevant lines (those with the most of the
/// query's words, the words rarer in the chunk counting more; else its first lines), each with
/// `context` lines around it.
pub fn human(
    out: &mut impl Write,
    h: &Hit,
    words: &[String],
    context: usize,
    style: &Style,
) -> std::io::Result<()> {
    // A fused score says only "how high in both lists": the cosine beside it says how close.
    let score = match h.cosine {
        Some(c) if c != h.score => format!("{:.3} (cosine {c:.3})", h.score),
        _ => format!("{:.3}", h.score),
    };
    writeln!(
        out,
        "{}:{}-{}: {}",
        style.path(&h.path.to_string_lossy()),
        h.start_line,
        h.end_line,
        style.score(&score)
    )?;
    let lines: Vec<&str> = h
        .text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let chosen = relevant(&lines, words);
    let mut show = vec![0u8; lines.len()]; // 0 hidden, 1 context, 2 chosen
    for &i in &chosen {
        for s in show
            .iter_mut()
            .take((i + context + 1).min(lines.len()))
            .skip(i.saturating_sub(context))
        {
            *s = (*s).max(1);
        }
        show[i] = 2;
    }
    let mut last: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        if show[i] == 0 {
            continue;
        }
        if context > 0 && last.is_some_and(|l| l + 1 != i) {
            writeln!(out, "--")?;
        }
        last = Some(i);
        let sep = if show[i] == 2 { ':' } else { '-' };
        writeln!(
            out,
            "{}{sep}{}",
            style.line_no(&(h.start_line + i).to_string()),
            highlight(line, words, style)
        )?;
    }
    Ok(())
}

/// Up to [`SHOWN`] line indices, in order.
fn relevant(lines: &[&str], words: &[String]) -> Vec<usize> {
    let lower: Vec<String> = lines.iter().map(|l| l.to_lowercase()).collect();
    let has = |l: &str, w: &str| sembed_index::rank::words(l).any(|x| x == w);
    // A word in many lines of the chunk says little about which line matters.
    let weight: Vec<f32> = words
        .iter()
        .map(|w| {
            let n = lower.iter().filter(|l| has(l, w)).count();
            if n == 0 { 0.0 } else { 1.0 / n as f32 }
        })
        .collect();
    let mut scored: Vec<(f32, usize)> = lower
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut seen = std::collections::HashSet::new();
            let s = words
                .iter()
                .zip(&weight)
                .filter(|(w, _)| seen.insert(w.as_str()) && has(l, w))
                .map(|(_, x)| x)
                .sum::<f32>();
            (s, i)
        })
        .filter(|(s, _)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<usize> = scored.iter().take(SHOWN).map(|(_, i)| *i).collect();
    if out.is_empty() {
        out = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .take(SHOWN)
            .map(|(i, _)| i)
            .collect();
    }
    out.sort_unstable();
    out
}

/// `line` with the query's words marked (when colouring).
fn highlight(line: &str, words: &[String], style: &Style) -> String {
    if !style.on || words.is_empty() {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut word_start: Option<usize> = None;
    let flush = |out: &mut String, w: &str| {
        if words.iter().any(|q| *q == w.to_lowercase()) {
            out.push_str(&style.word(w));
        } else {
            out.push_str(w);
        }
    };
    for (i, c) in line.char_indices() {
        if c.is_alphanumeric() {
            word_start.get_or_insert(i);
        } else {
            if let Some(s) = word_start.take() {
                flush(&mut out, &line[s..i]);
            }
            out.push(c);
        }
    }
    if let Some(s) = word_start {
        flush(&mut out, &line[s..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_with_rare_query_words_are_shown() {
        let lines = [
            "the retry loop",
            "nothing here",
            "the backoff doubles",
            "the end",
            "retry with backoff",
        ];
        let words = [
            "retry".to_string(),
            "backoff".to_string(),
            "the".to_string(),
        ];
        assert_eq!(relevant(&lines, &words), [0, 2, 4]);
        // Nothing matches: the first non-blank lines.
        assert_eq!(
            relevant(&["", "a", "b", "c", "d"], &["zzz".to_string()]),
            [1, 2, 3]
        );
    }

    #[test]
    fn context_and_separators() {
        let text = "a\nb\nkey line\nc\nd\ne\nf\nkey again\ng";
        let h = Hit::new("f.txt", (10, 18), 0..text.len(), 0.5, text);
        let mut out = Vec::new();
        human(&mut out, &h, &["key".into()], 1, &Style::new(false)).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "f.txt:10-18: 0.500\n11-b\n12:key line\n13-c\n--\n16-f\n17:key again\n18-g\n"
        );
    }
}
