//! Helpers the fuzz targets share.

/// Where to cut an input of `len` bytes to check how a decoder treats its prefixes: every
/// length of a short input; of a long one 40 spread lengths and the last 8 (all lengths
/// would make each run quadratic in the input).
pub fn cuts(len: usize) -> Vec<usize> {
    if len <= 48 {
        (0..len).collect()
    } else {
        (0..40).map(|i| i * len / 40).chain(len - 8..len).collect()
    }
}
