//! From validated configuration (`tenbin-config`) to the pool's runtime description.

use tenbin_config::pool::{AdminState, AlgorithmName};
use tenbin_core::pick::Algorithm;
use tenbin_core::ServerState;

use super::{PoolConfig, ServerConfig};

/// What a hashing algorithm hashes, from `hash_on = "..."`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum HashOn {
    #[default]
    Source,
    Header(String),
    Cookie(String),
    Query(String),
}

impl HashOn {
    /// Reads `source`, `header:NAME`, `cookie:NAME`, `query:NAME`; anything else is `None`
    /// (config validation has already rejected it).
    pub fn parse(s: &str) -> Option<HashOn> {
        match s.split_once(':') {
            None if s == "source" => Some(HashOn::Source),
            Some(("header", n)) if !n.is_empty() => Some(HashOn::Header(n.to_string())),
            Some(("cookie", n)) if !n.is_empty() => Some(HashOn::Cookie(n.to_string())),
            Some(("query", n)) if !n.is_empty() => Some(HashOn::Query(n.to_string())),
            _ => None,
        }
    }
}

impl PoolConfig {
    /// The runtime pool description of a validated `[[pool]]`. `queue_timeout` comes from
    /// the frontend that uses the pool (`timeouts.queue`). With an active health check
    /// configured, servers start `Unchecked` until the checker reports them up.
    pub fn from_config(p: &tenbin_config::Pool, queue_timeout: std::time::Duration) -> PoolConfig {
        let algorithm = match p.algorithm {
            AlgorithmName::Roundrobin => Algorithm::RoundRobin,
            AlgorithmName::Wrr => Algorithm::WeightedRoundRobin,
            AlgorithmName::Leastconn => Algorithm::LeastConn,
            AlgorithmName::PeakEwma => Algorithm::PeakEwma {
                decay: p.ewma_decay,
            },
            AlgorithmName::LeastRequest => Algorithm::LeastRequest {
                bias: p.least_request_bias,
            },
            AlgorithmName::SourceHash => Algorithm::SourceHash,
            AlgorithmName::Maglev => Algorithm::Maglev {
                table_size: *p.maglev_table_size.get_ref(),
            },
            AlgorithmName::Ketama => Algorithm::Ketama,
        };
        let checked = p.health.is_some();
        let servers = p
            .server
            .iter()
            .map(|s| ServerConfig {
                name: s.name.get_ref().clone(),
                addr: *s.address.get_ref(),
                weight: *s.weight.get_ref(),
                group: s.group,
                maxconn: s.maxconn.as_ref().map(|m| *m.get_ref()),
                state: match s.state {
                    AdminState::Active if checked => ServerState::Unchecked,
                    AdminState::Active => ServerState::Active,
                    AdminState::Draining => ServerState::Draining,
                    AdminState::Maintenance => ServerState::Maintenance,
                },
            })
            .collect();
        PoolConfig {
            name: p.name.get_ref().clone(),
            algorithm,
            servers,
            queue_size: p.queue_size as usize,
            queue_timeout,
            hash_on: p
                .hash_on
                .as_ref()
                .and_then(|h| HashOn::parse(h.get_ref()))
                .unwrap_or_default(),
            source_prefix_v4: *p.source_prefix_v4.get_ref(),
            source_prefix_v6: *p.source_prefix_v6.get_ref(),
            slow_start: Some(p.slow_start).filter(|d| !d.is_zero()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
mode = "tcp"
default_pool = "app"

[[pool]]
name = "app"
algorithm = "maglev"
hash_on = "header:X-User"
source_prefix_v4 = 24
queue_size = 7
[[pool.server]]
name = "a"
address = "127.0.0.1:9001"
weight = 3
maxconn = 10
[[pool.server]]
name = "b"
address = "127.0.0.1:9002"
group = 1
state = "maintenance"
"#;

    #[test]
    fn converts_a_validated_pool() {
        let cfg = tenbin_config::Config::parse(TOML, "t.toml").unwrap();
        let pc =
            PoolConfig::from_config(cfg.pool("app").unwrap(), std::time::Duration::from_secs(2));
        assert_eq!(pc.name, "app");
        assert!(matches!(
            pc.algorithm,
            Algorithm::Maglev { table_size: 65537 }
        ));
        assert_eq!(pc.hash_on, HashOn::Header("X-User".into()));
        assert_eq!((pc.source_prefix_v4, pc.source_prefix_v6), (24, 128));
        assert_eq!(pc.queue_size, 7);
        assert_eq!(pc.servers.len(), 2);
        assert_eq!(pc.servers[0].weight, 3);
        assert_eq!(pc.servers[0].maxconn, Some(10));
        assert_eq!(pc.servers[0].state, ServerState::Active);
        assert_eq!(pc.servers[1].group, 1);
        assert_eq!(pc.servers[1].state, ServerState::Maintenance);
    }

    #[test]
    fn hash_on_forms() {
        assert_eq!(HashOn::parse("source"), Some(HashOn::Source));
        assert_eq!(
            HashOn::parse("cookie:sid"),
            Some(HashOn::Cookie("sid".into()))
        );
        assert_eq!(HashOn::parse("query:u"), Some(HashOn::Query("u".into())));
        assert_eq!(HashOn::parse("header:"), None);
        assert_eq!(HashOn::parse("body"), None);
    }
}
