//! tenbin-config: one TOML file describes the whole system; this crate turns it into a
//! validated [`Config`] (strict schema, errors with file, line, column and key) and diffs.
//! It does no I/O beyond parsing the text it is handed.
#![forbid(unsafe_code)]

pub mod dns;
pub mod mux;

/// The validated configuration of a whole tenbin node.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Config {}
