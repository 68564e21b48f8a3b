//! Writing embeddings: JSON, JSON Lines, NumPy `.npy`, raw little-endian f32, CSV.

use std::io::{self, Write};

use sembed::Embeddings;

/// An output format for [`write()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array of arrays.
    Json,
    /// One object per line: `{"index": i, "embedding": [...]}`, in input order.
    Jsonl,
    /// NumPy `.npy` v1.0, float32, shape `(n, dim)`.
    Npy,
    /// Raw little-endian f32, row-major, no header.
    F32,
    /// One row per line, comma-separated, no header.
    Csv,
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

/// The 64-byte-aligned header of a v1.0 `.npy` file holding `rows × cols` little-endian f32.
pub fn npy_header(rows: usize, cols: usize) -> Vec<u8> {
    npy_header_typed("<f4", rows, cols)
}

/// The header of a v1.0 `.npy` file of dtype `descr` (`<f4`, `|i1`, `|u1`).
fn npy_header_typed(descr: &str, rows: usize, cols: usize) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // magic (6) + version (2) + header length (2) + dict + padding + '\n', to a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Writes `e` to `w` in `format` (all rows at once; see [`Writer`] for streaming).
///
pub fn write(w: &mut impl Write, e: &Embeddings, format: Format) -> io::Result<()> {
    let mut out = Writer::new(w, format, e.len(), e.dim())?;
    out.write(e)?;
    out.finish().map(|_| ())
}

/// Writes embeddings chunk by chunk, so a large run never holds all vectors in memory. The number of
/// rows is fixed up front (the `.npy` header states it).
#[derive(Debug)]
pub struct Writer<W: Write> {
    w: W,
    format: Format,
    rows: usize,
    written: usize,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Starts output of `rows` vectors of `dim` floats (writes the npy header or the opening `[`).
    pub fn new(mut w: W, format: Format, rows: usize, dim: usize) -> io::Result<Self> {
        match format {
            Format::Npy => w.write_all(&npy_header(rows, dim))?,
            Format::Json => w.write_all(b"[")?,
            _ => {}
        }
        Ok(Writer {
            w,
            format,
            rows,
            written: 0,
            buf: Vec::new(),
        })
    }

    /// Appends the next rows, in order.
    pub fn write(&mut self, e: &Embeddings) -> io::Result<()> {
        if self.written + e.len() > self.rows {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "more rows than announced",
            ));
        }
        let w = &mut self.w;
        // Raw little-endian float32 is the in-memory layout here: one write for all rows (byte by
        // byte conversion was 4 % of a Model2Vec run, perf).
        #[cfg(target_endian = "little")]
        if matches!(self.format, Format::Npy | Format::F32) {
            w.write_all(bytemuck::cast_slice(e.as_slice()))?;
            self.written += e.len();
            return Ok(());
        }
        for (k, row) in e.rows().enumerate() {
            let i = self.written + k;
            match self.format {
                Format::Json => {
                    w.write_all(if i == 0 { b"[" } else { b",\n[" })?;
                    write_floats(w, row, ",")?;
                    w.write_all(b"]")?;
                }
                Format::Jsonl => {
                    write!(w, "{{\"index\":{i},\"embedding\":[")?;
                    write_floats(w, row, ",")?;
                    w.write_all(b"]}\n")?;
                }
                Format::Csv => {
                    write_floats(w, row, ",")?;
                    w.write_all(b"\n")?;
                }
                Format::Npy | Format::F32 => {
                    self.buf.clear();
                    self.buf.extend(row.iter().flat_map(|x| x.to_le_bytes()));
                    w.write_all(&self.buf)?;
                }
            }
        }
        self.written += e.len();
        Ok(())
    }

    /// Ends the output (closing `]` for JSON), flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.written != self.rows {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fewer rows than announced",
            ));
        }
        if self.format == Format::Json {
            self.w.write_all(b"]\n")?;
        }
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Reads a float32 C-order `.npy` of shape `(n, dim)` (what `--format npy` writes).
pub fn read_npy(path: &std::path::Path) -> sembed::Result<Embeddings> {
    let bad = |why: &str| sembed::Error::InvalidFile {
        path: path.to_path_buf(),
        reason: why.to_string(),
    };
    let b = std::fs::read(path).map_err(|e| sembed::Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
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
        .collect::<sembed::Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("expected a 2-D array"));
    };
    let data = &b[start + hlen..];
    if cols == 0 || data.len() != rows * cols * 4 {
        return Err(bad("data size does not match the shape"));
    }
    Ok(Embeddings::new(
        cols,
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

/// Writes quantized embeddings (`--precision`): integers in JSON, JSON Lines and CSV, `|i1`/`|u1` in npy.
/// Raw `f32` output only takes float32.
pub fn write_quantized(
    w: &mut impl Write,
    q: &sembed::quantize::Quantized,
    format: Format,
) -> io::Result<()> {
    use sembed::quantize::Quantized;
    let (width, values, descr, bytes): (usize, Vec<i64>, &str, Vec<u8>) = match q {
        Quantized::F32(e) => return write(w, e, format),
        Quantized::I8 { width, data } => (
            *width,
            data.iter().map(|&v| v as i64).collect(),
            "|i1",
            data.iter().map(|&v| v as u8).collect(),
        ),
        Quantized::U8 { width, data } => (
            *width,
            data.iter().map(|&v| v as i64).collect(),
            "|u1",
            data.clone(),
        ),
    };
    let rows = values.len().checked_div(width).unwrap_or(0);
    let join = |row: &[i64]| row.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    match format {
        Format::F32 => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "raw f32 output holds float32 only; use npy, json, jsonl or csv for quantized embeddings",
            ));
        }
        Format::Npy => {
            w.write_all(&npy_header_typed(descr, rows, width))?;
            w.write_all(&bytes)?;
        }
        Format::Json => {
            let all: Vec<String> = values
                .chunks(width.max(1))
                .map(|r| format!("[{}]", join(r)))
                .collect();
            writeln!(w, "[{}]", all.join(",\n"))?;
        }
        Format::Jsonl => {
            for (i, r) in values.chunks(width.max(1)).enumerate() {
                writeln!(w, "{{\"index\":{i},\"embedding\":[{}]}}", join(r))?;
            }
        }
        Format::Csv => {
            for r in values.chunks(width.max(1)) {
                writeln!(w, "{}", join(r))?;
            }
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let h = npy_header(2758, 384);
        assert_eq!(h.len() % 64, 0);
        assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([h[8], h[9]]) as usize;
        assert_eq!(10 + len, h.len());
        let dict = std::str::from_utf8(&h[10..]).unwrap();
        assert!(
            dict.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2758, 384), }")
        );
        assert!(dict.ends_with('\n'));
    }

    #[test]
    fn streaming_in_chunks_equals_one_write() {
        let e = Embeddings::new(2, vec![1.0, 0.25, -3.0, 1e-8, 5.0, 6.0]);
        for format in [
            Format::Json,
            Format::Jsonl,
            Format::Npy,
            Format::F32,
            Format::Csv,
        ] {
            let mut whole = Vec::new();
            write(&mut whole, &e, format).unwrap();
            let mut w = Writer::new(Vec::new(), format, 3, 2).unwrap();
            w.write(&Embeddings::new(2, e.as_slice()[..2].to_vec()))
                .unwrap();
            w.write(&Embeddings::new(2, e.as_slice()[2..].to_vec()))
                .unwrap();
            assert_eq!(w.finish().unwrap(), whole, "{format:?}");
        }
        let mut empty = Vec::new();
        write(&mut empty, &Embeddings::new(2, vec![]), Format::Json).unwrap();
        assert_eq!(empty, b"[]\n");
    }

    #[test]
    fn jsonl_line_shape() {
        let e = Embeddings::new(2, vec![0.5, -1.0]);
        let mut out = Vec::new();
        write(&mut out, &e, Format::Jsonl).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"index\":0,\"embedding\":[0.5,-1]}\n"
        );
    }

    #[test]
    fn json_and_csv() {
        let e = Embeddings::new(2, vec![1.0, 0.25, -3.0, 1e-8]);
        let mut j = Vec::new();
        write(&mut j, &e, Format::Json).unwrap();
        let parsed: Vec<Vec<f32>> = serde_json::from_slice(&j).unwrap();
        assert_eq!(parsed, vec![vec![1.0, 0.25], vec![-3.0, 1e-8]]);
        let mut c = Vec::new();
        write(&mut c, &e, Format::Csv).unwrap();
        assert_eq!(String::from_utf8(c).unwrap(), "1,0.25\n-3,0.00000001\n");
    }
}
