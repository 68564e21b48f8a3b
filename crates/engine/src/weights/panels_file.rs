//! Writes a safetensors file whose linear weights are stored as the encoder's kernel panels
//! (`ops::packed`): the built-in model's, by `build.rs` at compile time, and a prepared copy's.
//! Such a file is read without packing anything. Std and serde_json only, because `build.rs`
//! includes this file as a module of its own.
//!
//! Layout: the header's `__metadata__` has [`LAYOUT_KEY`] = [`LAYOUT`]; a linear weight `[n, k]`
//! becomes `[⌈n / 32⌉, k, 32]`: feature `j`'s value for input `kk` at `((j / 32) · k + kk) · 32 +
//! j % 32`, the last panel zero-padded. Panels come first (each a multiple of 64 bytes) and the
//! header is padded with spaces so the data starts 64-byte aligned.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// Features per panel.
pub const PANEL: usize = 32;
/// The metadata key naming the layout, and its value (bumped if the layout changes).
pub const LAYOUT_KEY: &str = "sembed.layout";
/// See [`LAYOUT_KEY`].
pub const LAYOUT: &str = "panels32-v1";
/// The layout of a copy for AMX tiles ([`write_tiles`]): f32 linear weights as the tile kernel's
/// bf16 pairs, `[⌈n / 32⌉, 2 · ⌈k / 32⌉ · 32, 32]` of dtype BF16 (the same bytes as f32 panels).
pub const TILES_LAYOUT: &str = "tiles32-v1";

/// Makes a `[n, k]` matrix's tiles from its f32 panels (given as bytes), into the output bytes.
pub type TileFn<'a> = &'a dyn Fn(&[u8], usize, usize, &mut Vec<u8>);

/// The linear weights of a BERT, XLM-RoBERTa or MPNet encoder: its 2-D `….layer.N.….weight`
/// tensors (LayerNorm weights are 1-D; MPNet's `relative_attention_bias` is outside the layers).
pub fn is_encoder_linear(name: &str) -> bool {
    name.contains(".layer.") && name.ends_with(".weight")
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

struct Tensor<'a> {
    name: &'a str,
    dtype: String,
    shape: Vec<usize>,
    data: &'a [u8],
}

/// Rewrites the safetensors file `src` into `out`, storing the tensors `is_linear` picks (2-D,
/// f32 or f16; others are left as they are) as panels, every other tensor unchanged, and adding
/// `extra` to the metadata.
pub fn write_panels(
    src: &[u8],
    is_linear: &dyn Fn(&str) -> bool,
    extra: &[(&str, &str)],
    out: &mut dyn Write,
) -> io::Result<()> {
    write(src, is_linear, extra, None, out)
}

/// [`write_panels`] in the [`TILES_LAYOUT`]: each linear weight (all must be f32) packed into
/// panels, then given to `tiles`, which writes what the file stores. (Only the AMX kernel's targets
/// make such copies.)
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn write_tiles(
    src: &[u8],
    is_linear: &dyn Fn(&str) -> bool,
    extra: &[(&str, &str)],
    tiles: TileFn<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    write(src, is_linear, extra, Some(tiles), out)
}

fn write(
    src: &[u8],
    is_linear: &dyn Fn(&str) -> bool,
    extra: &[(&str, &str)],
    tiles: Option<TileFn<'_>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let header_len = src
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
        .ok_or_else(|| bad("not a safetensors file"))?;
    let data = src
        .get(8 + header_len..)
        .ok_or_else(|| bad("header runs past the end"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&src[8..8 + header_len]).map_err(|e| bad(e.to_string()))?;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    for (name, v) in &header {
        if name == "__metadata__" {
            for (k, v) in v.as_object().into_iter().flatten() {
                metadata.insert(k.clone(), v.clone());
            }
            continue;
        }
        let field = |f: &str| v.get(f).ok_or_else(|| bad(format!("{name}: no {f}")));
        let dtype = field("dtype")?.as_str().unwrap_or_default().to_string();
        let nums = |f: &str| -> io::Result<Vec<usize>> {
            field(f)?
                .as_array()
                .ok_or_else(|| bad(format!("{name}: {f} is not a list")))?
                .iter()
                .map(|x| x.as_u64().map(|x| x as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("{name}: {f} is not a list of numbers")))
        };
        let shape = nums("shape")?;
        let offsets = nums("data_offsets")?;
        let &[a, b] = offsets.as_slice() else {
            return Err(bad(format!("{name}: data_offsets is not a pair")));
        };
        let bytes = data
            .get(a..b)
            .ok_or_else(|| bad(format!("{name}: data outside the file")))?;
        tensors.push((
            a,
            Tensor {
                name,
                dtype,
                shape,
                data: bytes,
            },
        ));
    }
    let layout = if tiles.is_some() {
        TILES_LAYOUT
    } else {
        LAYOUT
    };
    metadata.insert(LAYOUT_KEY.into(), layout.into());
    for (k, v) in extra {
        metadata.insert(k.to_string(), v.to_string().into());
    }

    // Panels first, then the rest in file order.
    tensors.sort_by_key(|(a, _)| *a);
    let elem = |t: &Tensor| match t.dtype.as_str() {
        "F32" => Some(4),
        "F16" => Some(2),
        _ => None,
    };
    let packs = |t: &Tensor| t.shape.len() == 2 && elem(t).is_some() && is_linear(t.name);
    let (mut order, rest): (Vec<_>, Vec<_>) =
        tensors.into_iter().map(|(_, t)| t).partition(|t| packs(t));
    order.sort_by(|a, b| a.name.cmp(b.name));
    let panels = order.len();
    order.extend(rest);

    let mut entries = serde_json::Map::new();
    entries.insert("__metadata__".into(), serde_json::to_value(&metadata)?);
    let mut at = 0usize;
    for (i, t) in order.iter().enumerate() {
        let (shape, len, dtype) = if i < panels {
            let (n, k) = (t.shape[0], t.shape[1]);
            let es = elem(t).unwrap_or(4);
            if t.data.len() != n * k * es {
                return Err(bad(format!(
                    "{}: {} bytes for {n}×{k}",
                    t.name,
                    t.data.len()
                )));
            }
            if tiles.is_some() {
                if es != 4 {
                    return Err(bad(format!("{}: tiles are made from f32 only", t.name)));
                }
                let kp = k.div_ceil(32) * 32;
                let shape = vec![n.div_ceil(PANEL), 2 * kp, PANEL];
                (shape, n.div_ceil(PANEL) * kp * 2 * PANEL * 2, "BF16")
            } else {
                let shape = vec![n.div_ceil(PANEL), k, PANEL];
                (shape, packed_len(n, k, PANEL) * es, t.dtype.as_str())
            }
        } else {
            (t.shape.clone(), t.data.len(), t.dtype.as_str())
        };
        entries.insert(
            t.name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [at, at + len]}),
        );
        at += len;
    }
    let mut json = serde_json::to_vec(&entries)?;
    while !(8 + json.len()).is_multiple_of(64) {
        json.push(b' ');
    }
    out.write_all(&(json.len() as u64).to_le_bytes())?;
    out.write_all(&json)?;
    let (mut panel_buf, mut tile_buf) = (Vec::new(), Vec::new());
    for (i, t) in order.iter().enumerate() {
        if i < panels {
            let (n, k) = (t.shape[0], t.shape[1]);
            pack_bytes(t.data, n, k, elem(t).unwrap_or(4), &mut panel_buf);
            match tiles {
                Some(make) => {
                    tile_buf.clear();
                    make(&panel_buf, n, k, &mut tile_buf);
                    let want = n.div_ceil(PANEL) * k.div_ceil(32) * 32 * 2 * PANEL * 2;
                    if tile_buf.len() != want {
                        return Err(bad(format!(
                            "{}: tiles of {} bytes",
                            t.name,
                            tile_buf.len()
                        )));
                    }
                    out.write_all(&tile_buf)?;
                }
                None => out.write_all(&panel_buf)?,
            }
        } else {
            out.write_all(t.data)?;
        }
    }
    Ok(())
}

/// Elements of the packed form of an `[n, k]` matrix in panels of `nr`.
pub fn packed_len(n: usize, k: usize, nr: usize) -> usize {
    n.div_ceil(nr) * nr * k
}

/// Packs `w` (`[n, k]`, row-major) into `out` (`packed_len(n, k, nr)` elements): feature `j`'s
/// value for input `kk` at `((j / nr) · k + kk) · nr + j % nr`, the last panel zero-padded.
pub fn pack<T: Copy + Default>(w: &[T], n: usize, k: usize, nr: usize, out: &mut [T]) {
    assert!(w.len() >= n * k && out.len() >= packed_len(n, k, nr));
    for (p, panel) in out
        .chunks_exact_mut(nr * k)
        .take(n.div_ceil(nr))
        .enumerate()
    {
        for (kk, group) in panel.chunks_exact_mut(nr).enumerate() {
            for (c, v) in group.iter_mut().enumerate() {
                let j = p * nr + c;
                *v = if j < n { w[j * k + kk] } else { T::default() };
            }
        }
    }
}

/// `w` (`[n, k]` row-major, elements of `es` = 2 or 4 bytes) as [`PANEL`]-wide panels, into `out`.
pub fn pack_bytes(w: &[u8], n: usize, k: usize, es: usize, out: &mut Vec<u8>) {
    out.clear();
    out.resize(packed_len(n, k, PANEL) * es, 0);
    match es {
        2 => pack(
            w.as_chunks::<2>().0,
            n,
            k,
            PANEL,
            out.as_chunks_mut::<2>().0,
        ),
        4 => pack(
            w.as_chunks::<4>().0,
            n,
            k,
            PANEL,
            out.as_chunks_mut::<4>().0,
        ),
        _ => panic!("pack_bytes: {es}-byte elements"),
    }
}
