//! The CLI's input readers (lines, JSON Lines) and output writers (JSON, JSON Lines, npy, raw
//! f32, CSV; float32 or quantized).

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use sembed::Embeddings;
use sembed::quantize::{Precision, Quantized, quantize};
use sembed_cli::args::InputFormat;
use sembed_cli::input::{Chunk, from_reader, parse_all};
use sembed_cli::output::{Extra, Format, Sink, Writer, parse_npy};
use serde_json::value::RawValue;

/// Hands out its bytes `step` at a time, as a pipe does.
struct Pieces {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn texts(c: &Chunk) -> Vec<(String, Option<String>, usize)> {
    (0..c.len())
        .map(|i| {
            (
                c.strs()[i].to_string(),
                c.id(i).map(|r| r.get().to_string()),
                c.line(i),
            )
        })
        .collect()
}

/// The input reader: `data[0]` picks the format (bit 0: lines or JSON Lines) and the size of each
/// read (1 to 128 bytes: texts and UTF-8 sequences cut anywhere); the rest is the input. Read in
/// pieces on the reader thread, it must give the same texts, ids and line numbers as parsed whole,
/// or the same error (line and byte named alike).
pub fn input(data: &[u8]) {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let format = if ctl & 1 == 0 {
        InputFormat::Lines
    } else {
        InputFormat::Jsonl
    };
    let whole = parse_all(bytes.to_vec(), "fuzz", format);
    let reader = Pieces {
        data: bytes.to_vec(),
        at: 0,
        step: 1 + (ctl >> 1) as usize,
    };
    let input = from_reader(Box::new(reader), "fuzz".into(), None, format).expect("reader thread");
    let mut read = Chunk::default();
    let mut failed = None;
    // To the end, past an error too: the channel then closes and the reader thread is joined.
    while let Some(c) = input.next() {
        match c {
            Ok(c) if failed.is_none() => read.extend(c),
            Ok(_) => panic!("a chunk after an error"),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    match (whole, failed) {
        (Ok(whole), None) => {
            let (a, b) = (texts(&whole), texts(&read));
            assert_eq!(a, b, "texts read in pieces differ from the whole");
            if format == InputFormat::Lines {
                assert!(a.iter().all(|(t, _, _)| !t.contains('\n')));
                // Empty input: no text; otherwise a text per line break, plus a last unended line.
                let breaks = bytes.iter().filter(|&&b| b == b'\n').count();
                let lines = breaks + usize::from(!bytes.is_empty() && !bytes.ends_with(b"\n"));
                assert_eq!(a.len(), lines, "one text per line");
            }
        }
        (Err(a), Some(b)) => assert_eq!(format!("{a:#}"), format!("{b:#}")),
        (a, b) => panic!(
            "parsed whole: {:?}; in pieces: {:?}",
            a.map(|c| c.len()),
            b.map(|e| format!("{e:#}"))
        ),
    }
}

/// A sink whose bytes are read back after the writer is done.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("sink").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const TEXTS: [&str; 8] = [
    "",
    "a,b",
    "she said \"hi\"",
    "two\nlines\r\n",
    "tab\there",
    "déjà 東京 🙂",
    "back\\slash",
    "nul\u{0}",
];
const IDS: [Option<&str>; 4] = [
    None,
    Some("1"),
    Some("\"x\\\"y\""),
    Some("{\"k\":[1,null]}"),
];

/// What a reader of each format sees in a row: floats (`None` where JSON has `null`) or integers.
#[derive(Debug)]
enum Values {
    F(Vec<Option<f32>>),
    I(Vec<i64>),
}

impl PartialEq for Values {
    /// Floats equal as values (`-0` reads back as `0` from JSON) or one unit in the last place
    /// apart: a JSON reader parses the shortest decimal as a double, then rounds it to float32.
    fn eq(&self, other: &Values) -> bool {
        let close = |a: f32, b: f32| a == b || a.to_bits().abs_diff(b.to_bits()) <= 1;
        match (self, other) {
            (Values::F(a), Values::F(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) => close(*x, *y),
                        (None, None) => true,
                        _ => false,
                    })
            }
            (Values::I(a), Values::I(b)) => a == b,
            _ => false,
        }
    }
}

fn expected(q: &Quantized, row: usize) -> Values {
    match q {
        Quantized::F32(e) => Values::F(
            e.row(row)
                .iter()
                .map(|x| x.is_finite().then_some(*x))
                .collect(),
        ),
        Quantized::I8 { width, data } => Values::I(
            data[row * width..(row + 1) * width]
                .iter()
                .map(|&v| v.into())
                .collect(),
        ),
        Quantized::U8 { width, data } => Values::I(
            data[row * width..(row + 1) * width]
                .iter()
                .map(|&v| v.into())
                .collect(),
        ),
    }
}

fn from_json(v: &serde_json::Value, float: bool) -> Values {
    let a = v.as_array().expect("an array");
    if float {
        Values::F(a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect())
    } else {
        Values::I(a.iter().map(|x| x.as_i64().expect("an integer")).collect())
    }
}

/// CSV fields of `s`, quoted fields unquoted (RFC 4180), records ended by `\n` outside quotes.
fn csv_records(s: &str) -> Vec<Vec<String>> {
    let (mut records, mut fields, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut fields));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && fields.is_empty(),
        "CSV ends mid-record"
    );
    records
}

/// The output writers: `data[0]` picks the format and the precision, `data[1]` the width (1–16)
/// and the options (with text, CSV header); the rest are float32 values (any bits: NaN, infinities,
/// subnormals) filling up to 8 rows. The rows are quantized as `sembed embed --precision` does,
/// written in two calls, and read back: every format must give back each row's values (JSON's
/// `null` for a non-finite float), ids and texts, and npy's header its shape.
pub fn output(data: &[u8]) {
    let [ctl, opts, rest @ ..] = data else {
        return;
    };
    let format = [
        Format::Json,
        Format::Jsonl,
        Format::Npy,
        Format::F32,
        Format::Csv,
    ][(ctl % 5) as usize];
    let precision = [
        Precision::Float32,
        Precision::Int8,
        Precision::Uint8,
        Precision::Binary,
        Precision::Ubinary,
    ][(ctl / 5 % 5) as usize];
    let dim = 1 + (opts & 15) as usize;
    let (with_text, header) = (opts & 16 != 0, opts & 32 != 0);
    let values: Vec<f32> = rest
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .take(8 * dim)
        .collect();
    let rows = values.len() / dim;
    if rows == 0 || (format == Format::F32 && precision != Precision::Float32) {
        return; // nothing to write; raw f32 is float32 only (the CLI refuses the rest)
    }
    let e = Embeddings::new(dim, values[..rows * dim].to_vec());
    let Ok(q) = quantize(&e, precision, None) else {
        return; // int8/uint8 ranges need two rows: a clear error in the CLI
    };
    let (width, descr) = match &q {
        Quantized::F32(_) => (dim, "<f4"),
        Quantized::I8 { width, .. } => (*width, "|i1"),
        Quantized::U8 { width, .. } => (*width, "|u1"),
    };
    let ids: Vec<Option<Box<RawValue>>> = (0..rows)
        .map(|i| IDS[i % IDS.len()].map(|s| RawValue::from_string(s.into()).expect("JSON")))
        .collect();
    let extras: Vec<Extra<'_>> = (0..rows)
        .map(|i| Extra {
            id: ids[i].as_deref(),
            text: TEXTS[i % TEXTS.len()],
        })
        .collect();
    let sink = Shared::default();
    let mut w = Writer::new(
        Sink::Stream(Box::new(sink.clone())),
        format,
        (width, descr),
        with_text,
        header,
    )
    .expect("writes to memory");
    // Two calls, as chunks arrive: the second continues the first's numbering and layout.
    let split = rows / 2;
    let part = |r: std::ops::Range<usize>| match &q {
        Quantized::F32(e) => Quantized::F32(Embeddings::new(
            dim,
            e.as_slice()[r.start * dim..r.end * dim].to_vec(),
        )),
        Quantized::I8 { width, data } => Quantized::I8 {
            width: *width,
            data: data[r.start * width..r.end * width].to_vec(),
        },
        Quantized::U8 { width, data } => Quantized::U8 {
            width: *width,
            data: data[r.start * width..r.end * width].to_vec(),
        },
    };
    w.write(&part(0..split), &extras[..split]).expect("write");
    w.write(&part(split..rows), &extras[split..])
        .expect("write");
    w.finish().expect("finish");
    let out = sink.0.lock().expect("sink").clone();
    let float = precision == Precision::Float32;
    match format {
        Format::Json => {
            let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
            let a = v.as_array().expect("an array of rows");
            assert_eq!(a.len(), rows);
            for (i, row) in a.iter().enumerate() {
                assert_eq!(from_json(row, float), expected(&q, i), "row {i}");
            }
        }
        Format::Jsonl => {
            let text = std::str::from_utf8(&out).expect("UTF-8");
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), rows);
            for (i, line) in lines.iter().enumerate() {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert_eq!(v["index"], i);
                let id = ids[i]
                    .as_ref()
                    .map(|r| serde_json::from_str::<serde_json::Value>(r.get()).expect("id"));
                assert_eq!(v.get("id"), id.as_ref(), "row {i}'s id");
                if with_text {
                    assert_eq!(v["text"], extras[i].text);
                }
                assert_eq!(
                    from_json(&v["embedding"], float),
                    expected(&q, i),
                    "row {i}"
                );
            }
        }
        Format::Npy if float => {
            let back = parse_npy(&out, "output").expect("npy reads back");
            assert_eq!((back.len(), back.dim()), (rows, dim));
            let bits = |s: &[f32]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(back.as_slice()), bits(e.as_slice()));
        }
        Format::Npy => {
            let hlen = u16::from_le_bytes([out[8], out[9]]) as usize;
            let h = std::str::from_utf8(&out[10..10 + hlen]).expect("header");
            assert!(h.contains(&format!("'descr': '{descr}'")));
            assert!(h.contains(&format!("'shape': ({rows}, {width})")));
            assert_eq!(out.len() - 10 - hlen, rows * width);
        }
        Format::F32 => {
            let bits: Vec<u32> = out
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let want: Vec<u32> = e.as_slice().iter().map(|x| x.to_bits()).collect();
            assert_eq!(bits, want);
        }
        Format::Csv => {
            let text = std::str::from_utf8(&out).expect("UTF-8");
            let mut records = csv_records(text);
            if header {
                let h = records.remove(0);
                assert_eq!(h.len(), width + usize::from(with_text));
            }
            assert_eq!(records.len(), rows);
            for (i, mut r) in records.into_iter().enumerate() {
                if with_text {
                    assert_eq!(r.remove(0), extras[i].text, "row {i}'s text");
                }
                let got = if float {
                    Values::F(
                        r.iter()
                            .map(|f| (f != "null").then(|| f.parse::<f32>().expect("a float")))
                            .collect(),
                    )
                } else {
                    Values::I(r.iter().map(|f| f.parse().expect("an integer")).collect())
                };
                assert_eq!(got, expected(&q, i), "row {i}");
            }
        }
    }
}
