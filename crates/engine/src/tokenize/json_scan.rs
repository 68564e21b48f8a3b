//! Finds `model.vocab` in a tokenizer.json without parsing what comes before it, so the ~30k-entry
//! vocabulary is read once, by [`super::vocab::Vocab::from_json_object`] (which also finds its end),
//! while serde_json parses everything else (with the vocabulary spliced out). Anything unexpected returns `None` and the caller falls back to
//! serde_json for the whole file, so a mistake here costs speed, never correctness.

/// Where the object value of `model.vocab` starts (its `{`), if the file is laid out plainly.
pub(crate) fn find_model_vocab(json: &str) -> Option<usize> {
    let b = json.as_bytes();
    let model = find_key(b, ws(b, 0), b"model")?;
    let vocab = find_key(b, model, b"vocab")?;
    (b.get(vocab) == Some(&b'{')).then_some(vocab)
}

/// In the object starting at `i`, the position of the value of `key` (a key without escapes).
fn find_key(b: &[u8], i: usize, key: &[u8]) -> Option<usize> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = ws(b, i + 1);
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let end = skip_string(b, i)?;
        let name = &b[i + 1..end - 1];
        i = ws(b, end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        if name == key {
            return Some(i);
        }
        i = ws(b, skip_value(b, i)?);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            _ => return None,
        }
    }
}

/// Past the JSON whitespace starting at `i`.
pub(super) fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// Past the string starting at `b[i] == '"'`.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// Past the value starting at `i` (objects and arrays by bracket depth, strings aware).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..]
                .iter()
                .take_while(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                .count();
            (n > 0).then_some(i + n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_vocabulary_past_other_sections() {
        let j = r#"{"version":"1.0","added_tokens":[{"content":"}\"{","id":0}],
            "normalizer":null, "model" : {"type":"WordPiece","x":[1,{"a":"]"}],"vocab": {"a":0,"b\"}":1} ,"z":2}}"#;
        let at = find_model_vocab(j).unwrap();
        assert!(j[at..].starts_with(r#"{"a":0,"b\"}":1}"#));
        assert_eq!(find_model_vocab(r#"{"model":{"vocab":[["a",0.0]]}}"#), None);
        assert_eq!(find_model_vocab(r#"{"model":{"type":"BPE"}}"#), None);
        assert_eq!(find_model_vocab(r#"{"model":{"vocab":{"a":0"#), Some(18));
        assert_eq!(find_model_vocab("[]"), None);
    }
}
