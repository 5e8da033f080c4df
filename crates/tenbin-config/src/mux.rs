//! The `[mux]` and `[agent]` sections: XDP VIP tier (owned by the VIP tier's work).

use serde::Deserialize;

/// Raw `[mux]` table as written in TOML.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MuxSection {}

/// Raw `[agent]` table as written in TOML.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {}
