//! Property tests (proptest) of what the engine promises for any input, not only the handpicked
//! texts of the other tests:
//! - a text's vector does not depend on the texts batched with it, the batch size or the thread
//!   count (the README: "the same bits in any batch");
//! - vectors come back in input order, for any order of the inputs;
//! - quantization keeps what it documents: int8/uint8 codes place each value in its step of the
//!   calibration range (clipped outside it), binary/ubinary keep exactly the signs.
//!
//! The models are real and need no download: the built-in all-MiniLM-L6-v2, the tiny random BERT
//! fixture (CLS pooling, max_seq_length 64) and the committed Model2Vec model (static).
//!
//! Each property runs a fixed number of cases (`ProptestConfig::cases`, not `PROPTEST_CASES`), and
//! `failure_persistence` is `None`: a failure prints its minimal case and the seed, and nothing is
//! written beside the sources (rerun a failing case by putting it in a plain test).

use std::sync::OnceLock;

use proptest::prelude::*;
use sembed::quantize::{Precision, Quantized, Ranges, quantize};
use sembed::{EmbedOptions, Embedder, Embeddings};
use sembed_testkit::data;

/// The configuration of every property here: `cases` cases, no failure files, and shrinking
/// bounded to 2048 steps or a minute (a step embeds a batch again: shrinking a failure of the
/// built-in model with long texts would otherwise take many minutes).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2048,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

#[cfg(feature = "builtin")]
fn builtin() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::builtin().unwrap())
}

fn tiny() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::from_dir(data("fixtures/tiny-bert-cls")).unwrap())
}

fn static_model() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::from_dir(data("m2v-minilm-256")).unwrap())
}

/// Words for texts: plain ASCII, punctuation the pre-tokenizer splits, accents that lowercasing
/// and accent stripping change, CJK (one token per character), emoji and other unknown tokens,
/// a zero-width space and a combining mark.
const WORDS: &[&str] = &[
    "the",
    "a",
    "man",
    "is",
    "playing",
    "guitar",
    "Guitar.",
    "don't",
    "U.S.A.",
    "well-known",
    "1234",
    "x",
    "Schnee",
    "naïve",
    "café",
    "ÉCOLE",
    "東京",
    "🎸",
    "Ωmega",
    "ﬁsh",
    "zero\u{200b}width",
    "e\u{301}",
    "antidisestablishmentarianism",
    "((((",
];

fn words(n: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), n).prop_map(|w| w.join(" "))
}

/// A text: empty, whitespace only (no tokens), a few words, any Unicode (control characters,
/// unassigned code points and all), or long enough that every model here cuts it (the built-in
/// model at 256 tokens, the fixture at 64, the static model at 512).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        1 => "[ \t\n\r\u{a0}\u{3000}]{1,4}",
        6 => words(1..12),
        4 => "(?s).{0,40}",
        1 => words(520..640),
    ]
}

/// Embedding options, under which a text's vector must not change with its batch: any batch size
/// and thread count (0: all the budget has), the model's truncation or a short one (down to the
/// special tokens alone), normalization as the model says or forced on or off.
fn options() -> impl Strategy<Value = EmbedOptions> {
    (
        1..=8usize,
        0..=2usize,
        prop::option::of(2..=48usize),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(batch_size, threads, max_length, normalize)| EmbedOptions {
                batch_size,
                threads,
                max_length,
                normalize,
                ..EmbedOptions::default()
            },
        )
}

/// The largest absolute difference of two vectors.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Embeds `texts` in one call with `opts` and each alone, and checks that every row is the text's
/// vector alone: within 1e-6 per component (the property asked for), and then bit for bit (what
/// the README documents).
fn check_batch_independence(
    model: &Embedder,
    texts: &[String],
    opts: &EmbedOptions,
) -> Result<(), TestCaseError> {
    let batch = model.embed(texts, opts).unwrap();
    prop_assert_eq!(batch.len(), texts.len());
    prop_assert_eq!(batch.dim(), model.dim());
    for (i, t) in texts.iter().enumerate() {
        let alone = model.embed(std::slice::from_ref(t), opts).unwrap();
        let d = max_abs_diff(batch.row(i), alone.row(0));
        prop_assert!(
            d <= 1e-6,
            "text {i} ({t:?}) differs by {d} from its vector alone"
        );
        prop_assert!(
            batch.row(i) == alone.row(0),
            "text {i} ({t:?}): within 1e-6 of its vector alone ({d}) but not the same bits"
        );
        prop_assert!(
            batch.row(i).iter().all(|x| x.is_finite()),
            "text {i} ({t:?}): not finite"
        );
    }
    Ok(())
}

/// Embeds `texts` and `texts` permuted by `perm` (`permuted[k] = texts[perm[k]]`) and checks that
/// row `k` of the second is row `perm[k]` of the first, bit for bit.
fn check_order(
    model: &Embedder,
    texts: &[String],
    perm: &[usize],
    opts: &EmbedOptions,
) -> Result<(), TestCaseError> {
    let permuted: Vec<&str> = perm.iter().map(|&i| texts[i].as_str()).collect();
    let a = model.embed(texts, opts).unwrap();
    let b = model.embed(&permuted, opts).unwrap();
    prop_assert_eq!(b.len(), texts.len());
    for (k, &i) in perm.iter().enumerate() {
        prop_assert!(
            b.row(k) == a.row(i),
            "row {k} of the permuted call is not text {i} ({:?}): max difference {}",
            texts[i],
            max_abs_diff(b.row(k), a.row(i))
        );
    }
    Ok(())
}

/// Texts and a permutation of their indexes.
fn texts_and_permutation(
    n: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = (Vec<String>, Vec<usize>)> {
    prop::collection::vec(text(), n).prop_flat_map(|texts| {
        let perm = Just((0..texts.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(texts), perm)
    })
}

proptest! {
    #![proptest_config(config(48))]

    /// Built-in model: a text's vector is the same in any batch, at any batch size and thread
    /// count, as alone. Broken if padding leaked into attention or pooling, if a kernel's
    /// blocking depended on the number of rows, or if batches were cut at the wrong place.
    #[cfg(feature = "builtin")]
    #[test]
    fn builtin_vector_does_not_depend_on_its_batch(
        texts in prop::collection::vec(text(), 1..=10),
        opts in options(),
    ) {
        check_batch_independence(builtin(), &texts, &opts)?;
    }

    /// Built-in model: any permutation of the inputs permutes the outputs the same way. Broken
    /// if batching by length (or across threads) put rows back in the wrong place.
    #[cfg(feature = "builtin")]
    #[test]
    fn builtin_output_order_is_input_order(
        (texts, perm) in texts_and_permutation(2..=10),
        opts in options(),
    ) {
        check_order(builtin(), &texts, &perm, &opts)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Tiny BERT fixture (CLS pooling, cut at 64 tokens): as for the built-in model.
    #[test]
    fn tiny_bert_vector_does_not_depend_on_its_batch(
        texts in prop::collection::vec(text(), 1..=12),
        opts in options(),
    ) {
        check_batch_independence(tiny(), &texts, &opts)?;
    }

    /// Tiny BERT fixture: output order is input order for any permutation.
    #[test]
    fn tiny_bert_output_order_is_input_order(
        (texts, perm) in texts_and_permutation(2..=12),
        opts in options(),
    ) {
        check_order(tiny(), &texts, &perm, &opts)?;
    }

    /// Static (Model2Vec) model, embedded text by text in worker threads: as for the built-in
    /// model. Broken if a worker's scratch carried over from one text to the next.
    #[test]
    fn static_vector_does_not_depend_on_its_batch(
        texts in prop::collection::vec(text(), 1..=12),
        opts in options(),
    ) {
        check_batch_independence(static_model(), &texts, &opts)?;
    }

    /// Static model: output order is input order for any permutation (workers finish in any
    /// order).
    #[test]
    fn static_output_order_is_input_order(
        (texts, perm) in texts_and_permutation(2..=12),
        opts in options(),
    ) {
        check_order(static_model(), &texts, &perm, &opts)?;
    }
}

/// A finite float of the kind embeddings hold, with the edge values mixed in: zeros of both
/// signs, tiny and large magnitudes, values that tie. Bounded (|x| ≤ 1e6) so a column's range
/// `max − min` stays finite and its step a normal float.
fn component() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => -1.0f32..=1.0,
        1 => -1e6f32..=1e6,
        1 => -1e-3f32..=1e-3,
        1 => prop::sample::select(vec![0.0f32, -0.0, 1.0, -1.0, 0.5, 1e-20, -1e-20]),
    ]
}

/// Dimensions 1, non-multiples of 8 and whole bytes.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), 1..=40usize, Just(384usize)]
}

/// `rows × dim` embeddings of [`component`]s.
fn embeddings(
    dim: usize,
    rows: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Embeddings> {
    prop::collection::vec(prop::collection::vec(component(), dim), rows)
        .prop_map(move |r| Embeddings::new(dim, r.concat()))
}

/// Per-dimension (min, max) of `e`, as the quantizer takes its ranges.
fn column_ranges(e: &Embeddings) -> Vec<(f32, f32)> {
    (0..e.dim())
        .map(|j| {
            e.rows()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), r| {
                    (lo.min(r[j]), hi.max(r[j]))
                })
        })
        .collect()
}

/// Checks one uint8 code `c` of value `x` against its column's range `lo..=hi`, the inverse of the
/// documented formula `c = clip(floor((x − lo) / step), 0, 255)`, `step = (hi − lo) / 255` (1 for
/// a constant column): below `lo` the code is 0; from `lo` up to the top code's step the code's
/// step `[lo + c·step, lo + (c+1)·step]` holds `x` — so inside the range `lo + (c + ½)·step`, the
/// dequantized value, is within one step of `x` (half a step but for rounding); above that, 255.
fn check_code(x: f32, c: u8, lo: f32, hi: f32) -> Result<(), TestCaseError> {
    let step = (hi - lo) / 255.0;
    let step = f64::from(if step == 0.0 { 1.0 } else { step });
    let (x, lo, hi) = (f64::from(x), f64::from(lo), f64::from(hi));
    if x < lo {
        prop_assert_eq!(c, 0, "{} below the range {}..={}", x, lo, hi);
    } else if x >= lo + 256.0 * step {
        prop_assert_eq!(c, 255, "{} past the top step of {}..={}", x, lo, hi);
    } else {
        // float32 rounding of x − lo, of the step and of the quotient: a few parts in 1e7 of the
        // 255 steps, so 1e-4 of a step of slack.
        let slack = 1e-4 * step;
        let start = lo + f64::from(c) * step;
        prop_assert!(
            start - slack <= x && x <= start + step + slack,
            "{x} in {lo}..={hi} (step {step}) got code {c}: its step is {start}..{}",
            start + step
        );
        if x <= hi {
            prop_assert!(
                (start + step / 2.0 - x).abs() <= step,
                "{x} in {lo}..={hi} (step {step}) dequantized from code {c} to {}",
                start + step / 2.0
            );
        }
    }
    Ok(())
}

/// uint8 and int8 codes of `e` with `calibration` (or `e`'s own ranges): checked value by value,
/// and int8 is uint8 − 128 exactly.
fn check_scalar(e: &Embeddings, calibration: Option<&Embeddings>) -> Result<(), TestCaseError> {
    let ranges = calibration.map(|c| Ranges::of(c).unwrap());
    let Quantized::U8 { width, data: u } = quantize(e, Precision::Uint8, ranges.as_ref()).unwrap()
    else {
        return Err(TestCaseError::fail("uint8 gave another kind"));
    };
    prop_assert_eq!(width, e.dim());
    prop_assert_eq!(u.len(), e.len() * e.dim());
    let Quantized::I8 { width, data: i } = quantize(e, Precision::Int8, ranges.as_ref()).unwrap()
    else {
        return Err(TestCaseError::fail("int8 gave another kind"));
    };
    prop_assert_eq!(width, e.dim());
    let shifted: Vec<i8> = u.iter().map(|&c| (i16::from(c) - 128) as i8).collect();
    prop_assert_eq!(i, shifted);
    let cols = column_ranges(calibration.unwrap_or(e));
    for (r, row) in e.rows().enumerate() {
        for (j, (&x, &(lo, hi))) in row.iter().zip(&cols).enumerate() {
            check_code(x, u[r * e.dim() + j], lo, hi)?;
        }
    }
    Ok(())
}

/// Unpacks `width`-byte rows of sign bits (first dimension in the most significant bit).
fn unpack(data: &[u8], width: usize, dim: usize) -> (Vec<bool>, bool) {
    let mut signs = Vec::new();
    let mut padding_clear = true;
    for row in data.chunks_exact(width) {
        for j in 0..width * 8 {
            let bit = row[j / 8] & (0x80 >> (j % 8)) != 0;
            if j < dim {
                signs.push(bit);
            } else {
                padding_clear &= !bit;
            }
        }
    }
    (signs, padding_clear)
}

proptest! {
    #![proptest_config(config(512))]

    /// int8/uint8 with a column's own ranges (no calibration, two rows or more): every value is in
    /// the range, so its code's step holds it — dequantizing gives it back within one step — and
    /// int8 is uint8 shifted by 128. Broken by a step of `range / 256`, rounding instead of floor,
    /// a missing clip, a transposed range or a code off by one.
    #[test]
    fn scalar_codes_round_trip_within_one_step(
        e in dim().prop_flat_map(|d| embeddings(d, 2..=6)),
    ) {
        check_scalar(&e, None)?;
    }

    /// int8/uint8 with calibration embeddings: values inside the calibration range round-trip
    /// within one step, values outside it clip to the end codes (0 below, 255 above).
    #[test]
    fn calibrated_codes_round_trip_within_one_step_and_clip_outside(
        (e, cal) in dim().prop_flat_map(|d| (embeddings(d, 1..=6), embeddings(d, 1..=6))),
    ) {
        check_scalar(&e, Some(&cal))?;
    }

    /// binary/ubinary: unpacking the bits gives back exactly which components are > 0 (zeros of
    /// either sign and negatives are 0 bits), rows are `ceil(dim / 8)` bytes with zero padding, and
    /// binary is ubinary − 128. Any finite float, subnormals included.
    #[test]
    fn sign_bits_round_trip_exactly(
        e in dim().prop_flat_map(|d| {
            let any_finite = prop::num::f32::NORMAL
                | prop::num::f32::SUBNORMAL
                | prop::num::f32::ZERO
                | prop::num::f32::POSITIVE
                | prop::num::f32::NEGATIVE;
            prop::collection::vec(prop_oneof![component(), any_finite], d..=d * 4)
                .prop_map(move |mut v| {
                    v.truncate(v.len() / d * d);
                    Embeddings::new(d, v)
                })
        }),
    ) {
        let dim = e.dim();
        let width = dim.div_ceil(8);
        let Quantized::U8 { width: w, data: u } = quantize(&e, Precision::Ubinary, None).unwrap()
        else {
            return Err(TestCaseError::fail("ubinary gave another kind"));
        };
        prop_assert_eq!(w, width);
        prop_assert_eq!(u.len(), e.len() * width);
        let (signs, padding_clear) = unpack(&u, width, dim);
        let want: Vec<bool> = e.as_slice().iter().map(|&x| x > 0.0).collect();
        prop_assert_eq!(signs, want);
        prop_assert!(padding_clear, "padding bits set: {:?}", u);
        let Quantized::I8 { width: w, data: i } = quantize(&e, Precision::Binary, None).unwrap()
        else {
            return Err(TestCaseError::fail("binary gave another kind"));
        };
        prop_assert_eq!(w, width);
        let shifted: Vec<i8> = u.iter().map(|&b| (i16::from(b) - 128) as i8).collect();
        prop_assert_eq!(i, shifted);
        // float32 is the identity.
        prop_assert_eq!(quantize(&e, Precision::Float32, None).unwrap(), Quantized::F32(e.clone()));
    }
}
