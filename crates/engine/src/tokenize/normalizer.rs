//! BERT text normalization: the `BertNormalizer` of Hugging Face `tokenizers`, reimplemented so that
//! loading it costs nothing. Each step follows
//! `tokenizers/src/normalizers/bert.rs` and uses the same Unicode tables (`unicode_categories`,
//! `unicode-normalization-alignments`), so ids match the oracle on any input.

use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::UnicodeNormalization;

/// Settings of a `BertNormalizer` as written in tokenizer.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BertNormalizer {
    pub clean_text: bool,
    pub handle_chinese_chars: bool,
    /// `None` in tokenizer.json means "same as `lowercase`".
    pub strip_accents: Option<bool>,
    pub lowercase: bool,
}

fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_control(c: char) -> bool {
    // Tab, newline and carriage return count as whitespace, not control.
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// CJK ideograph blocks that BERT surrounds with spaces (one token each).
pub(crate) fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

impl BertNormalizer {
    /// Normalizes `text` into `out` (cleared first). Steps in the oracle's order: clean, CJK spacing,
    /// accent stripping (NFD, drop non-spacing marks), lowercasing.
    pub(crate) fn normalize_into(&self, text: &str, out: &mut String, tmp: &mut String) {
        out.clear();
        if text.is_ascii() {
            // ASCII has no CJK, nothing to decompose, and its control characters are exactly
            // 0x00..=0x1f and 0x7f: skip the Unicode table look-ups (the common case), and work on
            // bytes (pushing `char`s re-encodes each one).
            let mut bytes = std::mem::take(out).into_bytes();
            bytes.extend(text.bytes().filter_map(|b| match b {
                b'\t' | b'\n' | b'\r' if self.clean_text => Some(b' '),
                0..=0x1f | 0x7f if self.clean_text => None,
                b if self.lowercase => Some(b.to_ascii_lowercase()),
                b => Some(b),
            }));
            // Only ASCII bytes went in; the check is a fast scan, and never fails.
            *out = String::from_utf8(bytes).unwrap_or_default();
            return;
        }
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    out.push(' ');
                    continue;
                }
            }
            if self.handle_chinese_chars && is_chinese_char(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        if self.strip_accents.unwrap_or(self.lowercase) {
            // ASCII has nothing to decompose: skip the NFD pass (the common case).
            if !out.is_ascii() {
                tmp.clear();
                tmp.extend(
                    out.nfd()
                        .map(|(c, _)| c)
                        .filter(|c| !c.is_mark_nonspacing()),
                );
                std::mem::swap(out, tmp);
            }
        }
        if self.lowercase {
            if out.is_ascii() {
                out.make_ascii_lowercase();
            } else {
                tmp.clear();
                tmp.extend(out.chars().flat_map(char::to_lowercase));
                std::mem::swap(out, tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(n: &BertNormalizer, s: &str) -> String {
        let (mut out, mut tmp) = (String::new(), String::new());
        n.normalize_into(s, &mut out, &mut tmp);
        out
    }

    const UNCASED: BertNormalizer = BertNormalizer {
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: None,
        lowercase: true,
    };

    #[test]
    fn uncased_strips_accents_and_lowercases() {
        assert_eq!(norm(&UNCASED, "Naïve CAFÉ"), "naive cafe");
    }

    #[test]
    fn control_chars_dropped_whitespace_mapped() {
        assert_eq!(
            norm(&UNCASED, "a\u{0}b\tc\u{200b}d\u{fffd}e\u{7}"),
            "ab cde"
        );
    }

    #[test]
    fn ascii_fast_path_agrees_with_the_general_path() {
        // Every ASCII byte, alone and embedded in non-ASCII text (which takes the general path).
        for b in 0u8..0x80 {
            for n in [
                UNCASED,
                BertNormalizer {
                    lowercase: false,
                    strip_accents: Some(false),
                    ..UNCASED
                },
            ] {
                let ascii = format!("a{}B", b as char);
                let mixed = format!("é{ascii}");
                let (fast, slow) = (norm(&n, &ascii), norm(&n, &mixed));
                let slow_tail: String = slow.chars().skip(1).collect();
                assert_eq!(fast, slow_tail, "byte {b:#x}");
            }
        }
    }

    #[test]
    fn cjk_is_spaced() {
        assert_eq!(norm(&UNCASED, "東京x"), " 東  京 x");
    }

    #[test]
    fn cased_keeps_accents() {
        let cased = BertNormalizer {
            lowercase: false,
            ..UNCASED
        };
        assert_eq!(norm(&cased, "Café"), "Café");
    }

    #[test]
    fn dotted_capital_i_lowercases_without_mark_when_stripping() {
        assert_eq!(norm(&UNCASED, "İ"), "i");
        let keep = BertNormalizer {
            strip_accents: Some(false),
            ..UNCASED
        };
        assert_eq!(norm(&keep, "İ"), "i\u{307}");
    }
}
