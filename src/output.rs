//! Writing embeddings: JSON, JSON Lines, NumPy `.npy`, raw little-endian f32, CSV.

use std::io::{self, Write};

use crate::embeddings::Embeddings;

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

/// The 128-byte-aligned header of a v1.0 `.npy` file holding `rows × cols` little-endian f32.
pub fn npy_header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
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
/// ```
/// let e = sembed::Embeddings::new(2, vec![0.5, -1.0]);
/// let mut out = Vec::new();
/// sembed::output::write(&mut out, &e, sembed::output::Format::Jsonl).unwrap();
/// assert_eq!(String::from_utf8(out).unwrap(), "{\"index\":0,\"embedding\":[0.5,-1]}\n");
/// ```
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
