//! Reading texts as they arrive: command-line arguments, a file, or stdin; one text per line or
//! JSON Lines. A reader thread cuts the input into chunks of whole lines and hands them over a
//! bounded channel, so the first vectors can be written before a pipe closes and memory stays
//! bounded however long the input is.

use std::io::{IsTerminal, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, bail};
use serde_json::value::RawValue;

use crate::args::InputFormat;

/// Some consecutive texts of the input, in order: their bytes in one buffer (no allocation per
/// line) and, for JSON Lines objects, their `id` fields.
#[derive(Debug, Default)]
pub struct Chunk {
    buf: String,
    texts: Vec<Range<usize>>,
    /// Raw JSON of each text's `id` (JSON Lines only; empty otherwise).
    ids: Vec<Option<Box<RawValue>>>,
    /// Each text's 1-based line of the input (argument number for arguments).
    lines: Vec<usize>,
    /// Input bytes this chunk consumed (for progress).
    pub bytes: u64,
    /// Input lines it covered (blank JSON Lines included), for line numbers in messages.
    line_count: usize,
}

impl Chunk {
    /// Number of texts.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether it has no text.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The texts, borrowed.
    pub fn strs(&self) -> Vec<&str> {
        self.texts.iter().map(|r| &self.buf[r.clone()]).collect()
    }

    /// The `id` of text `i`, if it had one.
    pub fn id(&self, i: usize) -> Option<&RawValue> {
        self.ids.get(i).and_then(|v| v.as_deref())
    }

    /// The input line (or argument number) text `i` came from.
    pub fn line(&self, i: usize) -> usize {
        self.lines[i]
    }

    /// Appends `other`'s texts.
    pub fn extend(&mut self, other: Chunk) {
        // `ids` is empty (no text has one) or one entry per text.
        let with_ids = !self.ids.is_empty() || !other.ids.is_empty();
        if with_ids {
            self.ids.resize_with(self.texts.len(), || None);
        }
        let base = self.buf.len();
        self.buf.push_str(&other.buf);
        self.texts.extend(
            other
                .texts
                .into_iter()
                .map(|r| r.start + base..r.end + base),
        );
        self.lines.extend(other.lines);
        if with_ids {
            if other.ids.is_empty() {
                self.ids.resize_with(self.texts.len(), || None);
            } else {
                self.ids.extend(other.ids);
            }
        }
        self.bytes += other.bytes;
        self.line_count += other.line_count;
    }
}

/// Where texts come from.
pub struct Input {
    /// For messages: a path, `<stdin>` or `argument`.
    pub name: String,
    /// Size in bytes when known up front (a regular file), for a progress bar.
    pub size: Option<u64>,
    rx: Receiver<anyhow::Result<Chunk>>,
    /// The reader thread, joined at the end of the input (a panic there must not pass for an
    /// end of input).
    reader: Option<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Input {
    /// The next chunk (blocking until one arrives), `None` at the end of the input.
    pub fn next(&self) -> Option<anyhow::Result<Chunk>> {
        match self.rx.recv() {
            Ok(c) => Some(c),
            Err(_) => self.ended(),
        }
    }

    /// The channel closed: the reader is done, or died.
    fn ended(&self) -> Option<anyhow::Result<Chunk>> {
        let handle = self
            .reader
            .as_ref()
            .and_then(|m| m.lock().ok().and_then(|mut h| h.take()))?;
        match handle.join() {
            Ok(()) => None,
            Err(_) => Some(Err(anyhow::anyhow!(
                "the input reader failed while reading {}",
                self.name
            ))),
        }
    }

    /// Where text line `line` of this input is, for messages: `FILE:LINE`, `<stdin>:LINE`, or
    /// `argument N`.
    pub fn locate(&self, line: usize) -> String {
        if self.reader.is_none() {
            format!("argument {line}")
        } else {
            format!("{}:{line}", self.name)
        }
    }

    /// A chunk already waiting, without blocking.
    pub fn ready(&self) -> Option<anyhow::Result<Chunk>> {
        self.rx.try_recv().ok()
    }
}

/// Starts reading the texts: `args` if any, else `--input FILE|-`, else piped stdin.
pub fn open(
    args: Vec<String>,
    input: Option<&Path>,
    format: Option<InputFormat>,
) -> anyhow::Result<Input> {
    if !args.is_empty() {
        let (tx, rx) = sync_channel(1);
        let mut chunk = Chunk {
            line_count: args.len(),
            ..Default::default()
        };
        for (i, a) in args.into_iter().enumerate() {
            let start = chunk.buf.len();
            chunk.buf.push_str(&a);
            chunk.texts.push(start..chunk.buf.len());
            chunk.lines.push(i + 1);
        }
        let _ = tx.send(Ok(chunk));
        return Ok(Input {
            name: "argument".into(),
            size: None,
            rx,
            reader: None,
        });
    }
    let (name, reader, size): (String, Box<dyn Read + Send>, Option<u64>) = match input {
        Some(p) if p.as_os_str() != "-" => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let meta = f
                .metadata()
                .with_context(|| format!("cannot read {}", p.display()))?;
            if meta.is_dir() {
                bail!("cannot read {}: is a directory", p.display());
            }
            let size = meta.is_file().then_some(meta.len());
            (p.display().to_string(), Box::new(f), size)
        }
        Some(_) => ("<stdin>".to_string(), Box::new(std::io::stdin()), None),
        None if !std::io::stdin().is_terminal() => {
            ("<stdin>".to_string(), Box::new(std::io::stdin()), None)
        }
        None => bail!("no input: give TEXT arguments, --input FILE, or pipe text to stdin"),
    };
    let format = format.unwrap_or_else(|| match input.and_then(|p| p.extension()) {
        Some(e) if e == "jsonl" || e == "ndjson" => InputFormat::Jsonl,
        _ => InputFormat::Lines,
    });
    from_reader(reader, name, size, format)
}

/// Starts reading texts from `reader` (named `name` in messages, `size` bytes long if known) on
/// a reader thread.
pub fn from_reader(
    reader: Box<dyn Read + Send>,
    name: String,
    size: Option<u64>,
    format: InputFormat,
) -> anyhow::Result<Input> {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let thread_name = name.clone();
    let reader = std::thread::Builder::new()
        .name("sembed-input".into())
        .spawn(move || read_all(reader, &thread_name, format, &tx))
        .context("cannot start the input reader")?;
    Ok(Input {
        name,
        size,
        rx,
        reader: Some(std::sync::Mutex::new(Some(reader))),
    })
}

/// All of `bytes` as one chunk, parsed at once: what [`from_reader`]'s chunks add up to, however
/// the reads fell (the fuzz target `input` checks that they do).
pub fn parse_all(bytes: Vec<u8>, name: &str, format: InputFormat) -> anyhow::Result<Chunk> {
    parse(bytes, name, format, &mut 0)
}

/// Chunks in flight at most: what bounds memory while the model is slower than the input.
const IN_FLIGHT: usize = 4;

/// Bytes asked for per read: a pipe returns what it has, a file this much.
const READ: usize = 256 * 1024;

/// Longest line (one text) read, in bytes: a line is held whole until its newline, so without a
/// bound a stream with no newline grew until an allocation failed (an abort). 64 MiB is far past
/// any model's token limit.
pub const MAX_LINE: usize = 64 << 20;

/// Reads `r` to the end, sending a chunk per read that completed at least one line.
fn read_all(
    mut r: Box<dyn Read + Send>,
    name: &str,
    format: InputFormat,
    tx: &SyncSender<anyhow::Result<Chunk>>,
) {
    let mut pending: Vec<u8> = Vec::new(); // bytes after the last complete line
    let mut line_no = 0usize; // lines sent so far
    let mut buf = vec![0u8; READ];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Err(
                    anyhow::Error::new(e).context(format!("cannot read {name}"))
                ));
                return;
            }
        };
        // Only the new bytes can hold the last newline (a long line must not be rescanned).
        let Some(nl) = buf[..n].iter().rposition(|&b| b == b'\n') else {
            pending.extend_from_slice(&buf[..n]);
            if pending.len() > MAX_LINE {
                let _ = tx.send(Err(anyhow::anyhow!(
                    "{name}:{}: a line over the limit of {MAX_LINE} bytes",
                    line_no + 1
                )));
                return;
            }
            continue;
        };
        let last_nl = pending.len() + nl;
        pending.extend_from_slice(&buf[..n]);
        let rest = pending.split_off(last_nl + 1);
        let whole = std::mem::replace(&mut pending, rest);
        let sent = parse(whole, name, format, &mut line_no);
        let failed = sent.is_err();
        if tx.send(sent).is_err() || failed {
            return;
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(parse(pending, name, format, &mut line_no));
    }
}

/// Complete lines → a chunk; `line_no` counts lines before these (for messages) and advances.
fn parse(
    bytes: Vec<u8>,
    name: &str,
    format: InputFormat,
    line_no: &mut usize,
) -> anyhow::Result<Chunk> {
    let consumed = bytes.len() as u64;
    let mut chunk = match format {
        InputFormat::Lines => split_lines(bytes, name, *line_no)?,
        InputFormat::Jsonl => parse_jsonl(&bytes, name, *line_no)?,
    };
    chunk.bytes = consumed;
    *line_no += chunk.line_count;
    Ok(chunk)
}

/// One text per line (a trailing `\r` removed; an empty line is an empty text), as byte ranges of
/// the buffer, which must be UTF-8; an error names the line and byte.
fn split_lines(bytes: Vec<u8>, name: &str, first_line: usize) -> anyhow::Result<Chunk> {
    let buf = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line_no = first_line + bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!(
            "{name}:{line_no}: invalid UTF-8 at byte {}",
            at - line_start + 1
        )
    })?;
    let mut texts = Vec::new();
    let mut start = 0;
    while start < buf.len() {
        let end = buf[start..].find('\n').map_or(buf.len(), |i| start + i);
        let text_end = if buf[start..end].ends_with('\r') {
            end - 1
        } else {
            end
        };
        texts.push(start..text_end);
        start = end + 1;
    }
    let line_count = texts.len();
    Ok(Chunk {
        buf,
        texts,
        ids: Vec::new(),
        lines: (first_line + 1..=first_line + line_count).collect(),
        bytes: 0,
        line_count,
    })
}

/// JSON Lines: each non-blank line is a JSON string or an object with a string `text` (and
/// optionally an `id` of any JSON type, passed through to the output).
fn parse_jsonl(bytes: &[u8], name: &str, first_line: usize) -> anyhow::Result<Chunk> {
    let mut chunk = Chunk::default();
    let mut line_count = 0;
    for raw in bytes.split_inclusive(|&b| b == b'\n') {
        line_count += 1;
        let line_no = first_line + line_count;
        let mut l = raw;
        if l.last() == Some(&b'\n') {
            l = &l[..l.len() - 1];
        }
        if l.last() == Some(&b'\r') {
            l = &l[..l.len() - 1];
        }
        let line = std::str::from_utf8(l).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{line_no}: invalid UTF-8 at byte {}",
                e.valid_up_to() + 1
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let (text, id) = json_text(line).map_err(|m| anyhow::anyhow!("{name}:{line_no}: {m}"))?;
        let start = chunk.buf.len();
        chunk.buf.push_str(&text);
        chunk.texts.push(start..chunk.buf.len());
        chunk.ids.push(id);
        chunk.lines.push(line_no);
    }
    chunk.line_count = line_count;
    Ok(chunk)
}

#[derive(serde::Deserialize)]
struct Object<'a> {
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

fn json_text(line: &str) -> Result<(String, Option<Box<RawValue>>), String> {
    let invalid = |e: serde_json::Error| format!("invalid JSON: {e}");
    let trimmed = line.trim_start();
    if trimmed.starts_with('"') {
        return serde_json::from_str::<String>(line)
            .map(|s| (s, None))
            .map_err(invalid);
    }
    if !trimmed.starts_with('{') {
        serde_json::from_str::<serde_json::Value>(line).map_err(invalid)?;
        return Err("expected a JSON string or an object with a \"text\" field".into());
    }
    let o: Object<'_> = serde_json::from_str(line).map_err(invalid)?;
    let text = match o.text {
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map_err(|_| "field \"text\" is not a string".to_string())?,
        None => return Err("object has no \"text\" field".into()),
    };
    Ok((text, o.id.map(|r| r.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[u8]) -> anyhow::Result<Vec<String>> {
        let c = split_lines(s.to_vec(), "t", 0)?;
        Ok(c.strs().into_iter().map(str::to_string).collect())
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
        let err = split_lines(b"\xffok".to_vec(), "t", 0)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t:1: invalid UTF-8 at byte 1");
        // Line numbers continue across chunks.
        let err = split_lines(b"\xff".to_vec(), "t", 41)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t:42: invalid UTF-8 at byte 1");
    }

    #[test]
    fn jsonl_strings_and_objects_with_ids() {
        let c = parse_jsonl(
            b"\"a\\nb\"\n{\"text\": \"c\", \"id\": 1}\n\n{\"id\": {\"k\": [1]}, \"text\": \"d\"}\n",
            "t",
            0,
        )
        .unwrap();
        assert_eq!(c.strs(), ["a\nb", "c", "d"]);
        assert!(c.id(0).is_none());
        assert_eq!(c.id(1).map(RawValue::get), Some("1"));
        assert_eq!(c.id(2).map(RawValue::get), Some("{\"k\": [1]}"));
        let err = parse_jsonl(b"{\"x\": 1}", "t", 0).unwrap_err().to_string();
        assert_eq!(err, "t:1: object has no \"text\" field");
        let err = parse_jsonl(b"\n[1]", "t", 3).unwrap_err().to_string();
        assert_eq!(
            err,
            "t:5: expected a JSON string or an object with a \"text\" field"
        );
    }

    /// Chunks joined keep every text and id in order.
    #[test]
    fn chunks_extend_in_order() {
        let mut a = parse_jsonl(b"{\"text\":\"x\",\"id\":7}\n", "t", 0).unwrap();
        a.extend(split_lines(b"y\nz".to_vec(), "t", 1).unwrap());
        a.extend(parse_jsonl(b"{\"text\":\"w\",\"id\":\"q\"}\n", "t", 3).unwrap());
        assert_eq!(a.strs(), ["x", "y", "z", "w"]);
        let ids: Vec<_> = (0..4).map(|i| a.id(i).map(RawValue::get)).collect();
        assert_eq!(ids, [Some("7"), None, None, Some("\"q\"")]);
        let lines: Vec<_> = (0..4).map(|i| a.line(i)).collect();
        assert_eq!(lines, [1, 2, 3, 4]);
        // Blank JSON Lines are skipped but counted.
        let c = parse_jsonl(b"\"a\"\n\n\n\"b\"\n", "t", 10).unwrap();
        assert_eq!((c.line(0), c.line(1)), (11, 14));
    }
}
