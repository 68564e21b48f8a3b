//! Reading texts: command-line arguments, a file, or stdin; one text per line or JSON Lines.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};

use super::InputFormat;

/// The texts to embed, from arguments, `--input FILE|-`, or piped stdin.
pub fn read_texts(
    args: Vec<String>,
    input: Option<&Path>,
    format: InputFormat,
) -> anyhow::Result<Vec<String>> {
    if !args.is_empty() {
        return Ok(args);
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
    let texts = parse(BufReader::new(reader), &name, format)?;
    if texts.is_empty() {
        bail!("{name}: no texts (the input is empty)");
    }
    Ok(texts)
}

/// Splits input into texts. Lines: every line is a text (an empty line is an empty text); a trailing
/// `\r` is removed. JSONL: each non-blank line is a JSON string or an object with a string `text`.
fn parse(mut r: impl BufRead, name: &str, format: InputFormat) -> anyhow::Result<Vec<String>> {
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
        match format {
            InputFormat::Lines => texts.push(line.to_string()),
            InputFormat::Jsonl => {
                if line.trim().is_empty() {
                    continue;
                }
                texts.push(json_text(line).map_err(|m| anyhow::anyhow!("{name}:{line_no}: {m}"))?);
            }
        }
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
        parse(s, "t", InputFormat::Lines)
    }

    #[test]
    fn lines_keep_empty_texts_and_strip_crlf() {
        assert_eq!(lines(b"a\r\n\nb").unwrap(), ["a", "", "b"]);
        assert_eq!(lines(b"a\n").unwrap(), ["a"]);
        assert!(lines(b"").unwrap().is_empty());
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = lines(b"ok\nbad \xff here\n").unwrap_err().to_string();
        assert_eq!(err, "t:2: invalid UTF-8 at byte 5");
    }

    #[test]
    fn jsonl_strings_and_objects() {
        let got = parse(
            &b"\"a\\nb\"\n{\"text\": \"c\", \"id\": 1}\n\n"[..],
            "t",
            InputFormat::Jsonl,
        )
        .unwrap();
        assert_eq!(got, ["a\nb", "c"]);
        let err = parse(&b"{\"x\": 1}"[..], "t", InputFormat::Jsonl)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t:1: object has no \"text\" field");
    }
}
