//! Reading texts: command-line arguments, a file, or stdin; one text per line or JSON Lines.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};

use crate::args::InputFormat;

/// Texts as read: separate strings (arguments, JSON Lines) or one buffer cut into lines (a text file:
/// one read and no allocation per line).
pub enum Texts {
    Owned(Vec<String>),
    Lines {
        buf: String,
        lines: Vec<std::ops::Range<usize>>,
    },
}

impl Texts {
    /// Every text, borrowed.
    pub fn strs(&self) -> Vec<&str> {
        match self {
            Texts::Owned(v) => v.iter().map(String::as_str).collect(),
            Texts::Lines { buf, lines } => lines.iter().map(|r| &buf[r.clone()]).collect(),
        }
    }
}

/// The texts to embed, from arguments, `--input FILE|-`, or piped stdin.
pub fn read_texts(
    args: Vec<String>,
    input: Option<&Path>,
    format: InputFormat,
) -> anyhow::Result<Texts> {
    if !args.is_empty() {
        return Ok(Texts::Owned(args));
    }
    let (name, reader): (String, Box<dyn Read>) = match input {
        Some(p) if p.as_os_str() != "-" => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            (p.display().to_string(), Box::new(f))
        }
        Some(_) => ("<stdin>".to_string(), Box::new(std::io::stdin())),
        None if !std::io::stdin().is_terminal() => {
            ("<stdin>".to_string(), Box::new(std::io::stdin()))
        }
        None => bail!("no input: give TEXT arguments, --input FILE, or pipe text to stdin"),
    };
    let texts = match format {
        InputFormat::Lines => {
            let mut bytes = Vec::new();
            BufReader::new(reader)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {name}"))?;
            let (buf, lines) = split_lines(bytes, &name)?;
            Texts::Lines { buf, lines }
        }
        InputFormat::Jsonl => Texts::Owned(parse_jsonl(BufReader::new(reader), &name)?),
    };
    let empty = match &texts {
        Texts::Owned(v) => v.is_empty(),
        Texts::Lines { lines, .. } => lines.is_empty(),
    };
    if empty {
        bail!("{name}: no texts (the input is empty)");
    }
    Ok(texts)
}

/// One text per line (a trailing `\r` removed; an empty line is an empty text), as byte ranges of
/// the whole input, which must be UTF-8; an error names the line and byte.
fn split_lines(
    bytes: Vec<u8>,
    name: &str,
) -> anyhow::Result<(String, Vec<std::ops::Range<usize>>)> {
    let buf = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line_no = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!(
            "{name}:{line_no}: invalid UTF-8 at byte {}",
            at - line_start + 1
        )
    })?;
    let mut lines = Vec::new();
    let mut start = 0;
    while start < buf.len() {
        let end = buf[start..].find('\n').map_or(buf.len(), |i| start + i);
        let text_end = if buf[start..end].ends_with('\r') {
            end - 1
        } else {
            end
        };
        lines.push(start..text_end);
        start = end + 1;
    }
    Ok((buf, lines))
}

/// JSON Lines: each non-blank line is a JSON string or an object with a string `text`.
fn parse_jsonl(mut r: impl BufRead, name: &str) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {name}"))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let line = std::str::from_utf8(&buf).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{line_no}: invalid UTF-8 at byte {}",
                e.valid_up_to() + 1
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        texts.push(json_text(line).map_err(|m| anyhow::anyhow!("{name}:{line_no}: {m}"))?);
    }
    Ok(texts)
}

fn json_text(line: &str) -> Result<String, String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(serde_json::Value::Object(mut o)) => match o.remove("text") {
            Some(serde_json::Value::String(s)) => Ok(s),
            Some(_) => Err("field \"text\" is not a string".into()),
            None => Err("object has no \"text\" field".into()),
        },
        Ok(_) => Err("expected a JSON string or an object with a \"text\" field".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[u8]) -> anyhow::Result<Vec<String>> {
        let (buf, lines) = split_lines(s.to_vec(), "t")?;
        Ok(lines.into_iter().map(|r| buf[r].to_string()).collect())
    }

    #[test]
    fn lines_keep_empty_texts_and_strip_crlf() {
        assert_eq!(lines(b"a\r\n\nb").unwrap(), ["a", "", "b"]);
        assert_eq!(lines(b"a\n").unwrap(), ["a"]);
        assert!(lines(b"").unwrap().is_empty());
        assert_eq!(lines(b"\n\n").unwrap(), ["", ""]);
        assert_eq!(lines(b"x\r").unwrap(), ["x"]);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = lines(b"ok\nbad \xff here\n").unwrap_err().to_string();
        assert_eq!(err, "t:2: invalid UTF-8 at byte 5");
        let err = split_lines(b"\xffok".to_vec(), "t")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t:1: invalid UTF-8 at byte 1");
    }

    #[test]
    fn jsonl_strings_and_objects() {
        let got = parse_jsonl(&b"\"a\\nb\"\n{\"text\": \"c\", \"id\": 1}\n\n"[..], "t").unwrap();
        assert_eq!(got, ["a\nb", "c"]);
        let err = parse_jsonl(&b"{\"x\": 1}"[..], "t")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t:1: object has no \"text\" field");
    }
}
