//! Fuzz the config pipeline (TOML → strict schema → validation) with any text.
//! Invariants: no panic; an error names the file and a line:column inside the text (or 0:0
//! when it has no position); a config that validates diffs empty against itself, and the
//! tiers' own constructors accept what validation accepted (the DNS engine, health checks,
//! persistence), since their errors would reach the operator without a file position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenbin_config::diff::ConfigDiff;
use tenbin_config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "fuzz.toml") {
        Err(e) => {
            assert_eq!(e.file, "fuzz.toml");
            let lines = text.matches('\n').count() + 1;
            if e.line == 0 {
                assert_eq!(e.column, 0, "{e}");
            } else {
                assert!(e.line <= lines && e.column >= 1, "{e} in {lines} lines");
            }
            assert!(e
                .to_string()
                .starts_with(&format!("fuzz.toml:{}:{}: ", e.line, e.column)));
        }
        Ok(c) => {
            assert!(
                ConfigDiff::between(&c, &c).is_empty(),
                "a config differs from itself"
            );
            if let Some(dns) = &c.dns {
                if let Err(e) = tenbin_dns::Engine::new(dns) {
                    panic!("validated [dns] refused by the engine: {e}");
                }
            }
            for pool in &c.pool {
                if let Some(h) = &pool.health {
                    if let Err(e) = tenbin_health::from_config::check_spec(pool.name.get_ref(), h) {
                        panic!("validated health check refused: {e}");
                    }
                }
            }
            let _ = tenbin_proxy::persist::from_config(&c);
        }
    }
});
