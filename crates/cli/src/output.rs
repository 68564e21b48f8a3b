//! Writing embeddings as they are computed: JSON, JSON Lines, NumPy `.npy`, raw little-endian f32,
//! CSV — float32 or quantized, with each input's `id` and text where the format has room for them.

use std::io::{self, Seek, SeekFrom, Write};

use sembed::Embeddings;
use sembed::quantize::Quantized;
use serde_json::value::RawValue;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array of arrays.
    Json,
    /// One object per line: `{"index": i, ["id": …,] ["text": …,] "embedding": [...]}`, in input
    /// order.
    Jsonl,
    /// NumPy `.npy` v1.0, shape `(n, dim)`, dtype `<f4` (or `|i1` / `|u1` when quantized).
    Npy,
    /// Raw little-endian f32, row-major, no header.
    F32,
    /// One row per line, comma-separated (optionally a header row and a text column).
    Csv,
}

/// What goes with one row besides its vector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    /// The input object's `id`, as raw JSON.
    pub id: Option<&'a RawValue>,
    /// The input text (written with `--with-text`).
    pub text: &'a str,
}

/// Where the bytes go: a file can be rewound (the npy header is fixed at the end), a stream not (npy
/// data is then held until the end).
pub enum Sink {
    File(io::BufWriter<std::fs::File>),
    Stream(Box<dyn Write>),
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(b),
            Sink::Stream(s) => s.write(b),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(f) => f.write_all(b),
            Sink::Stream(s) => s.write_all(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stream(s) => s.flush(),
        }
    }
}

fn write_floats(w: &mut impl Write, row: &[f32], sep: &str) -> io::Result<()> {
    for (j, x) in row.iter().enumerate() {
        if j > 0 {
            w.write_all(sep.as_bytes())?;
        }
        if x.is_finite() {
            // Display prints the shortest text that reads back to the same f32.
            write!(w, "{x}")?;
        } else {
            w.write_all(b"null")?;
        }
    }
    Ok(())
}

fn write_ints<T: std::fmt::Display>(w: &mut impl Write, row: &[T]) -> io::Result<()> {
    for (j, x) in row.iter().enumerate() {
        if j > 0 {
            w.write_all(b",")?;
        }
        write!(w, "{x}")?;
    }
    Ok(())
}

/// The header of a v1.0 `.npy` file holding `rows × cols` values of dtype `descr` (`<f4`, `|i1`,
/// `|u1`), always 128 bytes (so it can be rewritten in place once the row count is known).
pub fn npy_header(descr: &str, rows: usize, cols: usize) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // magic (6) + version (2) + header length (2) + dict + padding + '\n', to a multiple of 64.
    let total = (10 + dict.len() + 1).div_ceil(64).max(2) * 64;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// One row's values.
enum Row<'a> {
    F32(&'a [f32]),
    I8(&'a [i8]),
    U8(&'a [u8]),
}

/// How rows are laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Bytes as in memory (npy data, raw f32).
    Raw {
        npy: bool,
    },
    Json,
    Jsonl,
    Csv,
}

/// Whether `file` was opened for appending (where seeking does not move writes).
pub fn appends(file: &std::fs::File) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL only reads the flags of a descriptor `file` owns.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        flags < 0 || flags & libc::O_APPEND != 0
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        true
    }
}

/// Writes rows as they come; the number of rows need not be known in advance.
pub struct Writer {
    out: Sink,
    /// Where the npy header was written in a rewindable sink (fixed at the end).
    npy_at: Option<u64>,
    layout: Layout,
    width: usize,
    /// npy dtype.
    descr: &'static str,
    written: usize,
    with_text: bool,
    /// npy data held until `finish` (a sink that cannot be rewound).
    held: Vec<u8>,
}

impl Writer {
    /// Starts output of rows `width` values wide (`descr` as for [`npy_header`]); `header` adds
    /// csv's header row.
    pub fn new(
        mut out: Sink,
        format: Format,
        (width, descr): (usize, &'static str),
        with_text: bool,
        header: bool,
    ) -> io::Result<Self> {
        let mut npy_at = None;
        match format {
            Format::Npy if matches!(out, Sink::File(_)) => {
                if let Sink::File(f) = &mut out {
                    npy_at = Some(f.stream_position()?);
                }
                out.write_all(&npy_header(descr, 0, width))?
            }
            Format::Json => out.write_all(b"[")?,
            Format::Csv if header => {
                let mut line = String::new();
                if with_text {
                    line.push_str("text,");
                }
                let cols: Vec<String> = (0..width).map(|j| format!("e{j}")).collect();
                line.push_str(&cols.join(","));
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
            _ => {}
        }
        let layout = match format {
            Format::Npy => Layout::Raw { npy: true },
            Format::F32 => Layout::Raw { npy: false },
            Format::Json => Layout::Json,
            Format::Jsonl => Layout::Jsonl,
            Format::Csv => Layout::Csv,
        };
        Ok(Writer {
            out,
            npy_at,
            layout,
            width,
            descr,
            written: 0,
            with_text,
            held: Vec::new(),
        })
    }

    /// Appends rows, in order; `extras` is empty or one per row.
    pub fn write(&mut self, q: &Quantized, extras: &[Extra<'_>]) -> io::Result<()> {
        let rows: Vec<Row<'_>> = match q {
            Quantized::F32(e) => e.rows().map(Row::F32).collect(),
            Quantized::I8 { width, data } => data.chunks((*width).max(1)).map(Row::I8).collect(),
            Quantized::U8 { width, data } => data.chunks((*width).max(1)).map(Row::U8).collect(),
        };
        // Raw little-endian float32 and npy are the in-memory layout: one write for all rows
        // (byte by byte conversion was 4 % of a Model2Vec run, perf).
        if let Layout::Raw { npy } = self.layout {
            let bytes: &[u8] = match q {
                #[cfg(target_endian = "little")]
                Quantized::F32(e) => bytemuck::cast_slice(e.as_slice()),
                #[cfg(not(target_endian = "little"))]
                Quantized::F32(e) => &e
                    .as_slice()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<_>>(),
                Quantized::I8 { data, .. } => bytemuck::cast_slice(data),
                Quantized::U8 { data, .. } => data,
            };
            match &self.out {
                Sink::Stream(_) if npy => self.held.extend_from_slice(bytes),
                _ => self.out.write_all(bytes)?,
            }
            self.written += rows.len();
            return Ok(());
        }
        let w = &mut self.out;
        for (k, row) in rows.iter().enumerate() {
            let i = self.written + k;
            let extra = extras.get(k).copied().unwrap_or_default();
            match self.layout {
                Layout::Json => {
                    w.write_all(if i == 0 { b"[" } else { b",\n[" })?;
                    write_row(w, row, ",")?;
                    w.write_all(b"]")?;
                }
                Layout::Jsonl => {
                    write!(w, "{{\"index\":{i}")?;
                    if let Some(id) = extra.id {
                        write!(w, ",\"id\":{}", id.get())?;
                    }
                    if self.with_text {
                        w.write_all(b",\"text\":")?;
                        serde_json::to_writer(&mut *w, extra.text)?;
                    }
                    w.write_all(b",\"embedding\":[")?;
                    write_row(w, row, ",")?;
                    w.write_all(b"]}\n")?;
                }
                Layout::Csv => {
                    if self.with_text {
                        w.write_all(b"\"")?;
                        w.write_all(extra.text.replace('"', "\"\"").as_bytes())?;
                        w.write_all(b"\",")?;
                    }
                    write_row(w, row, ",")?;
                    w.write_all(b"\n")?;
                }
                Layout::Raw { .. } => {} // written as one slice above
            }
        }
        self.written += rows.len();
        Ok(())
    }

    /// Pushes what is written so far to the reader (after each chunk: a pipe's reader sees rows as
    /// they are done).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Ends the output (closing `]` for JSON, the npy header's row count) and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        match (self.layout, &mut self.out) {
            (Layout::Json, out) => out.write_all(b"]\n")?,
            (Layout::Raw { npy: true }, Sink::File(f)) => {
                f.flush()?;
                let file = f.get_mut();
                file.seek(SeekFrom::Start(self.npy_at.unwrap_or(0)))?;
                file.write_all(&npy_header(self.descr, self.written, self.width))?;
                file.seek(SeekFrom::End(0))?;
            }
            (Layout::Raw { npy: true }, Sink::Stream(s)) => {
                s.write_all(&npy_header(self.descr, self.written, self.width))?;
                s.write_all(&self.held)?;
            }
            _ => {}
        }
        self.out.flush()
    }
}

fn write_row(w: &mut impl Write, row: &Row<'_>, sep: &str) -> io::Result<()> {
    match row {
        Row::F32(r) => write_floats(w, r, sep),
        Row::I8(r) => write_ints(w, r),
        Row::U8(r) => write_ints(w, r),
    }
}

/// Reads a float32 C-order `.npy` of shape `(n, dim)` (what `--format npy` writes).
pub fn read_npy(path: &std::path::Path) -> anyhow::Result<Embeddings> {
    let b = std::fs::read(path)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot read {}", path.display())))?;
    parse_npy(&b, &path.display().to_string())
}

/// [`read_npy`] of bytes in memory (`name` for messages).
pub fn parse_npy(b: &[u8], name: &str) -> anyhow::Result<Embeddings> {
    let bad = |why: &str| anyhow::anyhow!("invalid {name}: {why}");
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file"));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        _ => return Err(bad("unsupported .npy version")),
    };
    let header = b
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated header"))?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("expected little-endian float32 in C order"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().map_err(|_| bad("bad shape")))
        .collect::<anyhow::Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("expected a 2-D array"));
    };
    let data = &b[start + hlen..];
    if cols == 0 || Some(data.len()) != rows.checked_mul(cols).and_then(|n| n.checked_mul(4)) {
        return Err(bad("data size does not match the shape"));
    }
    Ok(Embeddings::new(
        cols,
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink whose bytes the test can read back after the writer is done.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run(format: Format, chunks: &[Embeddings], extras: &[Extra<'_>], text: bool) -> Vec<u8> {
        let buf = Shared::default();
        let width = chunks.first().map_or(2, Embeddings::dim);
        let mut w = Writer::new(
            Sink::Stream(Box::new(buf.clone())),
            format,
            (width, "<f4"),
            text,
            false,
        )
        .unwrap();
        let mut at = 0;
        for c in chunks {
            let ex = if extras.is_empty() {
                &[][..]
            } else {
                &extras[at..at + c.len()]
            };
            w.write(&Quantized::F32(c.clone()), ex).unwrap();
            at += c.len();
        }
        w.finish().unwrap();
        buf.0.take()
    }

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let h = npy_header("<f4", 2758, 384);
        assert_eq!(h.len(), 128);
        assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([h[8], h[9]]) as usize;
        assert_eq!(10 + len, h.len());
        let dict = std::str::from_utf8(&h[10..]).unwrap();
        assert!(
            dict.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2758, 384), }")
        );
        assert!(dict.ends_with('\n'));
        assert_eq!(npy_header("<f4", 0, 1).len(), 128);
    }

    #[test]
    fn streaming_in_chunks_equals_one_write() {
        let e = Embeddings::new(2, vec![1.0, 0.25, -3.0, 1e-8, 5.0, 6.0]);
        let parts = [
            Embeddings::new(2, e.as_slice()[..2].to_vec()),
            Embeddings::new(2, e.as_slice()[2..].to_vec()),
        ];
        for format in [
            Format::Json,
            Format::Jsonl,
            Format::Npy,
            Format::F32,
            Format::Csv,
        ] {
            assert_eq!(
                run(format, &parts, &[], false),
                run(format, std::slice::from_ref(&e), &[], false),
                "{format:?}"
            );
        }
        assert_eq!(run(Format::Json, &[], &[], false), b"[]\n");
        assert!(run(Format::Jsonl, &[], &[], false).is_empty());
    }

    #[test]
    fn jsonl_line_shape_with_id_and_text() {
        let e = Embeddings::new(2, vec![0.5, -1.0, 1.0, 2.0]);
        assert_eq!(
            String::from_utf8(run(Format::Jsonl, std::slice::from_ref(&e), &[], false)).unwrap(),
            "{\"index\":0,\"embedding\":[0.5,-1]}\n{\"index\":1,\"embedding\":[1,2]}\n"
        );
        let id = RawValue::from_string("\"doc-7\"".into()).unwrap();
        let extras = [
            Extra {
                id: Some(&id),
                text: "a \"q\"",
            },
            Extra {
                id: None,
                text: "b",
            },
        ];
        assert_eq!(
            String::from_utf8(run(Format::Jsonl, std::slice::from_ref(&e), &extras, true)).unwrap(),
            "{\"index\":0,\"id\":\"doc-7\",\"text\":\"a \\\"q\\\"\",\"embedding\":[0.5,-1]}\n\
             {\"index\":1,\"text\":\"b\",\"embedding\":[1,2]}\n"
        );
        assert_eq!(
            String::from_utf8(run(Format::Csv, &[e], &extras, true)).unwrap(),
            "\"a \"\"q\"\"\",0.5,-1\n\"b\",1,2\n"
        );
    }

    #[test]
    fn json_and_csv() {
        let e = Embeddings::new(2, vec![1.0, 0.25, -3.0, 1e-8]);
        let j = run(Format::Json, std::slice::from_ref(&e), &[], false);
        let parsed: Vec<Vec<f32>> = serde_json::from_slice(&j).unwrap();
        assert_eq!(parsed, vec![vec![1.0, 0.25], vec![-3.0, 1e-8]]);
        let c = run(Format::Csv, &[e], &[], false);
        assert_eq!(String::from_utf8(c).unwrap(), "1,0.25\n-3,0.00000001\n");
    }

    /// A file gets its header first and the count fixed at the end; a stream gets it at the end.
    #[test]
    fn npy_to_a_file_and_to_a_stream_are_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let e = Embeddings::new(3, (0..9).map(|i| i as f32).collect());
        let f = std::fs::File::create(&p).unwrap();
        let mut w = Writer::new(
            Sink::File(io::BufWriter::new(f)),
            Format::Npy,
            (3, "<f4"),
            false,
            false,
        )
        .unwrap();
        w.write(&Quantized::F32(e.clone()), &[]).unwrap();
        w.write(&Quantized::F32(e.clone()), &[]).unwrap();
        w.finish().unwrap();
        let streamed = run(Format::Npy, &[e.clone(), e], &[], false);
        assert_eq!(std::fs::read(&p).unwrap(), streamed);
        assert!(String::from_utf8_lossy(&streamed[..128]).contains("'shape': (6, 3)"));
    }
}
