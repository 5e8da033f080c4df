//! The shipped example section parses, validates and answers; an unknown key is refused.

use tenbin_config::dns::DnsSection;
use tenbin_dns::Engine;

const EXAMPLE: &str = include_str!("../examples/gslb.toml");

#[test]
fn example_config_compiles_into_an_engine() {
    let cfg: DnsSection = toml::from_str(EXAMPLE).unwrap();
    cfg.validate().unwrap();
    let e = Engine::new(&cfg).unwrap();
    assert_eq!(e.stats().answers_per_dc.len(), 3);
}

#[test]
fn example_config_with_an_unknown_key_is_refused() {
    let bad = EXAMPLE.replace("max_answers = 8", "max_answer = 8");
    let err = toml::from_str::<DnsSection>(&bad).unwrap_err();
    assert!(err.to_string().contains("max_answer"), "{err}");
}
