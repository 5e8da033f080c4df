//! The `[dns]` section: GSLB DNS tier (owned by the DNS tier's work).

use serde::Deserialize;

/// Raw `[dns]` table as written in TOML.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {}
