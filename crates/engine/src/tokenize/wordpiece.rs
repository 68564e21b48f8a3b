//! The fast tokenizer path: added-token splitting → BERT normalizer → BERT pre-tokenizer → WordPiece →
//! `[CLS] … [SEP]`, exactly as Hugging Face `tokenizers` does it for BERT-family tokenizer.json files.
//! It exists because the `tokenizers` crate needs 22–44 ms to load a tokenizer.json; this one builds its
//! tables from the vocabulary alone. The `tokenizers` crate stays the test oracle (tests/tokenizer.rs).

use unicode_categories::UnicodeCategories;

use super::normalizer::BertNormalizer;
use super::vocab::Vocab;

/// A BERT-style WordPiece tokenizer (see the module docs).
#[derive(Debug)]
pub(crate) struct WordPiece {
    pub normalizer: Option<BertNormalizer>,
    pub vocab: Vocab,
    pub unk_id: u32,
    pub max_input_chars_per_word: usize,
    /// Added tokens matched in the raw text before normalization (`normalized: false`), longest first.
    added: Vec<(Box<str>, u32)>,
    /// Bit set of the bytes an added token starts with: elsewhere no added token can start.
    added_first: [u64; 4],
    /// Ids the post-processor puts before and after the text.
    pub prefix_ids: Vec<u32>,
    pub suffix_ids: Vec<u32>,
}

/// Reusable buffers so that tokenizing allocates nothing in steady state.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    normalized: String,
    tmp: String,
}

fn is_bert_punc(c: char) -> bool {
    // For ASCII the Unicode punctuation classes are a subset of is_ascii_punctuation: skip the table.
    c.is_ascii_punctuation() || (!c.is_ascii() && c.is_punctuation())
}

impl WordPiece {
    pub(crate) fn new(vocab: Vocab, unk_id: u32, max_input_chars_per_word: usize) -> Self {
        WordPiece {
            normalizer: None,
            vocab,
            unk_id,
            max_input_chars_per_word,
            added: Vec::new(),
            added_first: [0; 4],
            prefix_ids: Vec::new(),
            suffix_ids: Vec::new(),
        }
    }

    /// Sets the added tokens (matched longest first).
    pub(crate) fn set_added(&mut self, mut added: Vec<(Box<str>, u32)>) {
        added.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        self.added_first = [0; 4];
        for (t, _) in &added {
            if let Some(&b) = t.as_bytes().first() {
                self.added_first[b as usize / 64] |= 1 << (b % 64);
            }
        }
        self.added = added;
    }

    /// Number of ids the post-processor adds around the text.
    pub(crate) fn num_special(&self) -> usize {
        self.prefix_ids.len() + self.suffix_ids.len()
    }

    /// Tokenizes `text` into `out` (cleared first): prefix ids, at most `max_len - num_special()` text ids,
    /// suffix ids. `add_special` = false leaves out prefix/suffix and caps text ids at `max_len`.
    /// Returns whether text ids were cut.
    pub(crate) fn encode_into(
        &self,
        text: &str,
        max_len: usize,
        add_special: bool,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
    ) -> bool {
        out.clear();
        if add_special {
            out.extend_from_slice(&self.prefix_ids);
        }
        let budget = if add_special {
            max_len.saturating_sub(self.num_special())
        } else {
            max_len
        };
        let start = out.len();
        // Tokenize one id past the budget: if it exists, the text was cut.
        let limit = budget.saturating_add(1);
        self.split_added(text, |segment| match segment {
            Segment::Added(id) => {
                out.push(id);
                out.len() - start < limit
            }
            Segment::Text(t) => self.encode_segment(t, limit, start, out, scratch),
        });
        let truncated = out.len() - start > budget;
        out.truncate(start.saturating_add(budget));
        if add_special {
            out.extend_from_slice(&self.suffix_ids);
        }
        truncated
    }

    /// Walks `text`, reporting added tokens and the text between them; stops when `f` returns false.
    /// Matches are leftmost, and among matches at one place the longest, as in `tokenizers`. Only
    /// bytes some added token starts with are tried (a token's first byte is never a UTF-8
    /// continuation byte, so every match starts on a character boundary).
    fn split_added(&self, mut text: &str, mut f: impl FnMut(Segment<'_>) -> bool) {
        'outer: while !text.is_empty() {
            let b = text.as_bytes();
            let starts = |c: u8| self.added_first[c as usize / 64] & (1 << (c % 64)) != 0;
            for pos in (0..b.len()).filter(|&i| starts(b[i])) {
                let Some((tok, id)) = self
                    .added
                    .iter()
                    .find(|(t, _)| b[pos..].starts_with(t.as_bytes()))
                else {
                    continue;
                };
                if pos > 0 && !f(Segment::Text(&text[..pos])) {
                    return;
                }
                if !f(Segment::Added(*id)) {
                    return;
                }
                text = &text[pos + tok.len()..];
                continue 'outer;
            }
            f(Segment::Text(text));
            return;
        }
    }

    /// Normalizes, pre-tokenizes and WordPiece-encodes one segment, appending to `out`.
    /// Returns false once `out` holds `budget` ids past `start` (no need to look further).
    fn encode_segment(
        &self,
        text: &str,
        budget: usize,
        start: usize,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
    ) -> bool {
        let text = match &self.normalizer {
            Some(n) => {
                n.normalize_into(text, &mut scratch.normalized, &mut scratch.tmp);
                scratch.normalized.as_str()
            }
            None => text,
        };
        if text.is_ascii() {
            return self.pre_tokenize_ascii(text, budget, start, out);
        }
        // BertPreTokenizer: split on whitespace (dropped), then isolate each punctuation char.
        for word in text.split(char::is_whitespace).filter(|w| !w.is_empty()) {
            let mut rest = word;
            while !rest.is_empty() {
                let cut = rest
                    .char_indices()
                    .find(|&(_, c)| is_bert_punc(c))
                    .map(|(i, _)| i);
                let end = match cut {
                    Some(0) => rest.chars().next().map_or(1, char::len_utf8),
                    Some(i) => i,
                    None => rest.len(),
                };
                let (piece, tail) = rest.split_at(end);
                self.wordpiece(piece, out);
                if out.len() - start >= budget {
                    return false;
                }
                rest = tail;
            }
        }
        true
    }

    /// The BERT pre-tokenizer for ASCII text, byte by byte (the common case; same splits as the
    /// `char` loop: ASCII whitespace in Unicode's sense is 0x09..=0x0d and space).
    fn pre_tokenize_ascii(
        &self,
        text: &str,
        budget: usize,
        start: usize,
        out: &mut Vec<u32>,
    ) -> bool {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let end = if matches!(c, b'\t'..=b'\r' | b' ') {
                i += 1;
                continue;
            } else if c.is_ascii_punctuation() {
                i + 1
            } else {
                i + b[i..]
                    .iter()
                    .position(|&c| matches!(c, b'\t'..=b'\r' | b' ') || c.is_ascii_punctuation())
                    .unwrap_or(b.len() - i)
            };
            self.wordpiece(&text[i..end], out);
            if out.len() - start >= budget {
                return false;
            }
            i = end;
        }
        true
    }

    /// Greedy longest-match-first WordPiece of one pre-token; the whole word becomes unk when any
    /// part cannot be matched or it is longer than `max_input_chars_per_word` characters.
    fn wordpiece(&self, word: &str, out: &mut Vec<u32>) {
        // Bytes bound characters from above: count characters only for long words.
        if word.len() > self.max_input_chars_per_word
            && word.chars().count() > self.max_input_chars_per_word
        {
            out.push(self.unk_id);
            return;
        }
        let mark = out.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                let sub = &word[start..end];
                let hit = if start == 0 {
                    self.vocab.get(sub)
                } else {
                    self.vocab.get_continuation(sub)
                };
                if let Some(id) = hit {
                    found = Some(id);
                    break;
                }
                end -= match sub.as_bytes().last() {
                    Some(&b) if b < 0x80 => 1,
                    _ => sub.chars().next_back().map_or(1, char::len_utf8),
                };
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push(self.unk_id);
                    return;
                }
            }
        }
    }
}

enum Segment<'a> {
    Added(u32),
    Text(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> WordPiece {
        let words = [
            "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "a", "!", "##b", "##",
        ];
        let mut vocab = Vocab::new("##", words.len());
        for (i, w) in words.iter().enumerate() {
            vocab.insert(w, i as u32, true);
        }
        let mut wp = WordPiece::new(vocab, 0, 100);
        wp.normalizer = Some(BertNormalizer {
            clean_text: true,
            handle_chinese_chars: true,
            strip_accents: None,
            lowercase: true,
        });
        wp.prefix_ids = vec![1];
        wp.suffix_ids = vec![2];
        wp.set_added(vec![("[SEP]".into(), 2), ("[CLS]".into(), 1)]);
        wp
    }

    fn enc(wp: &WordPiece, s: &str, max: usize) -> Vec<u32> {
        let mut out = Vec::new();
        wp.encode_into(s, max, true, &mut out, &mut Scratch::default());
        out
    }

    #[test]
    fn greedy_longest_match() {
        assert_eq!(enc(&toy(), "Unaffable", 512), [1, 3, 4, 5, 2]);
    }

    #[test]
    fn unmatched_word_is_one_unk() {
        assert_eq!(enc(&toy(), "unaffz a", 512), [1, 0, 6, 2]);
    }

    #[test]
    fn punctuation_is_isolated() {
        assert_eq!(enc(&toy(), "a!a", 512), [1, 6, 7, 6, 2]);
    }

    #[test]
    fn added_tokens_split_raw_text() {
        assert_eq!(enc(&toy(), "a[SEP]a", 512), [1, 6, 2, 6, 2]);
    }

    #[test]
    fn empty_text_is_just_specials() {
        assert_eq!(enc(&toy(), "", 512), [1, 2]);
        assert_eq!(enc(&toy(), " \t ", 512), [1, 2]);
    }

    #[test]
    fn truncation_is_reported() {
        let wp = toy();
        let mut out = Vec::new();
        assert!(!wp.encode_into("a a", 4, true, &mut out, &mut Scratch::default()));
        assert!(wp.encode_into("a a a", 4, true, &mut out, &mut Scratch::default()));
        assert_eq!(out, [1, 6, 6, 2]);
        assert!(!wp.encode_into(
            "a a a",
            usize::MAX,
            false,
            &mut out,
            &mut Scratch::default()
        ));
    }

    #[test]
    fn truncation_keeps_specials() {
        assert_eq!(enc(&toy(), "a a a a a", 4), [1, 6, 6, 2]);
        assert_eq!(enc(&toy(), "a a a", 2), [1, 2]);
    }
}
