//! `[frontend.limits]` checks: ranges the schema cannot express.

use super::invalid::Invalid;
use crate::limits::Limits;

/// `i` is the frontend's index; errors are placed by their key's path.
pub(crate) fn limits(l: &Limits, i: usize) -> Result<(), Invalid> {
    let fail =
        |k: &str, message: &str| Err(Invalid::at(format!("frontend[{i}].limits.{k}"), message));
    // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB.
    if !(8 * 1024..=1024 * 1024).contains(&l.max_header_bytes) {
        return fail("max_header_bytes", "must be between 8192 and 1048576 bytes");
    }
    if l.max_request_line < 64 || l.max_request_line > l.max_header_bytes {
        return fail(
            "max_request_line",
            "must be at least 64 bytes and at most max_header_bytes",
        );
    }
    if !(1..=1000).contains(&l.max_headers) {
        return fail("max_headers", "must be between 1 and 1000");
    }
    if l.max_connections == 0 {
        return fail("max_connections", "must be at least 1");
    }
    if l.h2_max_concurrent_streams == 0 {
        return fail("h2_max_concurrent_streams", "must be at least 1");
    }
    if l.h2_max_header_list_bytes < 1024 {
        return fail("h2_max_header_list_bytes", "must be at least 1024 bytes");
    }
    if !l.h2_keepalive_interval.is_zero() && l.h2_keepalive_timeout.is_zero() {
        return fail(
            "h2_keepalive_timeout",
            "must be more than 0s when h2_keepalive_interval is set",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn parse(limits: &str) -> Result<Config, crate::ConfigError> {
        let text = format!(
            "[[frontend]]\nname = \"w\"\nbind = [\"127.0.0.1:80\"]\ndefault_pool = \"p\"\n\
             [frontend.limits]\n{limits}\n[[pool]]\nname = \"p\"\n\
             [[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9\"\n"
        );
        Config::parse(&text, "l.toml")
    }

    #[test]
    fn defaults_apply_and_fields_override() {
        let cfg = parse("max_headers = 50\nh2_keepalive_interval = \"0s\"").unwrap();
        let l = &cfg.frontend[0].limits;
        assert_eq!(l.max_headers, 50);
        assert_eq!(l.max_request_line, 8192);
        assert!(l.h2_keepalive_interval.is_zero());
    }

    #[test]
    fn out_of_range_names_the_key_and_line() {
        let e = parse("max_request_line = 70000").unwrap_err();
        assert_eq!(e.key, "frontend[0].limits.max_request_line");
        assert_eq!(e.line, 6, "the key's own line: {e}");
        let e = parse("bogus = 1").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
