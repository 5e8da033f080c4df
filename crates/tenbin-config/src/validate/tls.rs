//! `[frontend.tls]`, `[[frontend.sni_route]]` and `[pool.tls]` checks: terminate has
//! certificates and passthrough runs in mode tcp, versions and suites are known, SNI patterns
//! are host names (or `*.` one-label wildcards) routed to defined pools, and re-encryption that
//! verifies has a CA bundle.

use std::collections::HashSet;

use serde_spanned::Spanned;

use super::invalid::{spanned as at, Invalid};
use crate::frontend::{Frontend, Mode};
use crate::pool::Pool;
use crate::tls::{TlsMode, CIPHER_SUITES};

/// Semantic checks of a frontend's `tls` and `sni_route` (frontend number `i`).
pub(crate) fn frontend(fe: &Frontend, i: usize, pools: &HashSet<&str>) -> Result<(), Invalid> {
    let key = |k: &str| format!("frontend[{i}].{k}");
    let passthrough = fe
        .tls
        .as_ref()
        .is_some_and(|t| t.mode == TlsMode::Passthrough);
    for (r, route) in fe.sni_route.iter().enumerate() {
        let rk = |k: &str| key(&format!("sni_route[{r}].{k}"));
        if !passthrough {
            return Err(at(
                route.sni.span(),
                rk("sni"),
                "sni_route needs [frontend.tls] mode = \"passthrough\" (terminating frontends route with rules)",
            ));
        }
        if !is_sni_pattern(route.sni.get_ref()) {
            return Err(at(
                route.sni.span(),
                rk("sni"),
                format!(
                    "`{}` is not a host name or a `*.` wildcard of one",
                    route.sni.get_ref()
                ),
            ));
        }
        if !pools.contains(route.pool.get_ref().as_str()) {
            return Err(at(
                route.pool.span(),
                rk("pool"),
                format!("undefined pool `{}`", route.pool.get_ref()),
            ));
        }
        let dup = fe.sni_route[..r]
            .iter()
            .any(|o| o.sni.get_ref().eq_ignore_ascii_case(route.sni.get_ref()));
        if dup {
            return Err(at(
                route.sni.span(),
                rk("sni"),
                format!("`{}` is routed twice", route.sni.get_ref()),
            ));
        }
    }
    let Some(tls) = &fe.tls else {
        return Ok(());
    };
    match tls.mode {
        TlsMode::Passthrough => {
            if fe.mode != Mode::Tcp {
                return Err(Invalid::at(
                    key("tls.mode"),
                    "passthrough needs mode = \"tcp\": tenbin cannot read HTTP it does not decrypt",
                ));
            }
            if !tls.certificate.is_empty() {
                return Err(Invalid::at(key("tls.certificate"), "passthrough does not use certificates; remove them or use mode = \"terminate\""));
            }
            return Ok(());
        }
        TlsMode::Terminate => {}
    }
    if fe.mode == Mode::Udp {
        return Err(Invalid::at(
            key("tls"),
            "TLS needs mode = \"http\" or \"tcp\"",
        ));
    }
    if tls.certificate.is_empty() {
        return Err(Invalid::at(key("tls.certificate"), "terminating TLS needs at least one [[frontend.tls.certificate]] (cert and key PEM files)"));
    }
    for (c, files) in tls.certificate.iter().enumerate() {
        if files.cert.as_os_str().is_empty() || files.key.as_os_str().is_empty() {
            return Err(Invalid::at(
                key(&format!("tls.certificate[{c}]")),
                "cert and key need file paths",
            ));
        }
    }
    let min = version(&tls.min_version, key("tls.min_version"))?;
    let max = version(&tls.max_version, key("tls.max_version"))?;
    if min > max {
        return Err(at(
            tls.min_version.span(),
            key("tls.min_version"),
            "min_version is above max_version",
        ));
    }
    for (n, suite) in tls.cipher_suites.iter().enumerate() {
        let known = CIPHER_SUITES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(suite.get_ref()));
        if !known {
            return Err(at(
                suite.span(),
                key(&format!("tls.cipher_suites[{n}]")),
                format!(
                    "unknown cipher suite `{}`; known: {}",
                    suite.get_ref(),
                    CIPHER_SUITES.join(", ")
                ),
            ));
        }
    }
    if !tls.cipher_suites.is_empty() {
        let usable = |prefix13: bool| {
            tls.cipher_suites
                .iter()
                .any(|s| s.get_ref().to_ascii_uppercase().starts_with("TLS13_") == prefix13)
        };
        if !((max >= 13 && usable(true)) || (min <= 12 && usable(false))) {
            return Err(Invalid::at(
                key("tls.cipher_suites"),
                "no listed suite belongs to the allowed TLS versions",
            ));
        }
    }
    alpn(&tls.alpn, key("tls.alpn"))
}

/// Semantic checks of `pool.tls` (pool number `i`).
pub(crate) fn pool(pool: &Pool, i: usize) -> Result<(), Invalid> {
    let Some(tls) = &pool.tls else {
        return Ok(());
    };
    let key = |k: &str| format!("pool[{i}].tls.{k}");
    if tls.verify && tls.ca_file.is_none() {
        return Err(Invalid::at(key("ca_file"), "verify = true needs ca_file (a PEM bundle of the servers' CAs); system roots are never used"));
    }
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err(Invalid::at(
            key("client_cert"),
            "give client_cert and client_key together",
        ));
    }
    if let Some(sni) = &tls.sni {
        if !is_host_name(sni) {
            return Err(Invalid::at(
                key("sni"),
                format!("`{sni}` is not a host name"),
            ));
        }
    }
    alpn(&tls.alpn, key("alpn"))
}

fn version(v: &Spanned<String>, key: String) -> Result<u8, Invalid> {
    match v.get_ref().as_str() {
        "1.2" => Ok(12),
        "1.3" => Ok(13),
        other => Err(at(
            v.span(),
            key,
            format!("unknown TLS version `{other}`; accepted: \"1.2\", \"1.3\""),
        )),
    }
}

fn alpn(protocols: &[String], key: String) -> Result<(), Invalid> {
    match protocols.iter().find(|p| p.is_empty() || p.len() > 255) {
        Some(p) => Err(Invalid::at(
            key,
            format!("ALPN protocol `{p}` must be 1..=255 bytes"),
        )),
        None => Ok(()),
    }
}

fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_sni_pattern(s: &str) -> bool {
    match s.strip_prefix("*.") {
        Some(rest) => is_host_name(rest),
        None => is_host_name(s),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::config::Config;

    fn config(text: &str) -> Result<Config, String> {
        Config::parse(text, "t.toml").map_err(|e| e.to_string())
    }

    fn frontend(fe: &str) -> Result<(), String> {
        let text = format!(
            "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:8443\"]\ndefault_pool = \"web\"\n{fe}\n\
             [[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9001\"\n"
        );
        let c = config(&text)?;
        let pools: HashSet<&str> = c.pool.iter().map(|p| p.name.get_ref().as_str()).collect();
        super::frontend(&c.frontend[0], 0, &pools).map_err(|e| format!("{}: {}", e.key, e.message))
    }

    fn pool(tls: &str) -> Result<(), String> {
        let text = format!(
            "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:8443\"]\ndefault_pool = \"web\"\n\
             [[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9001\"\n\
             [pool.tls]\n{tls}\n"
        );
        let c = config(&text)?;
        super::pool(&c.pool[0], 0).map_err(|e| format!("{}: {}", e.key, e.message))
    }

    const CERT: &str = "[[frontend.tls.certificate]]\ncert = \"a.crt\"\nkey = \"a.key\"";

    #[test]
    fn terminate_and_passthrough_are_accepted() {
        let term = format!("mode = \"http\"\n[frontend.tls]\nmin_version = \"1.2\"\ncipher_suites = [\"TLS13_AES_128_GCM_SHA256\"]\n{CERT}");
        assert_eq!(frontend(&term), Ok(()));
        let pass = "mode = \"tcp\"\n[frontend.tls]\nmode = \"passthrough\"\n[[frontend.sni_route]]\nsni = \"*.shop.test\"\npool = \"web\"\n[[frontend.sni_route]]\nsni = \"api.test\"\npool = \"web\"";
        assert_eq!(frontend(pass), Ok(()));
    }

    #[test]
    fn frontend_mistakes_are_named() {
        for (fe, needle) in [
            ("mode = \"http\"\n[frontend.tls]", "at least one"),
            ("mode = \"http\"\n[frontend.tls]\nmode = \"passthrough\"", "passthrough needs mode = \"tcp\""),
            (&format!("mode = \"tcp\"\n[frontend.tls]\nmode = \"passthrough\"\n{CERT}"), "does not use certificates"),
            (&format!("[frontend.tls]\nmin_version = \"1.1\"\n{CERT}"), "unknown TLS version"),
            (&format!("[frontend.tls]\nmin_version = \"1.3\"\nmax_version = \"1.2\"\n{CERT}"), "above"),
            (&format!("[frontend.tls]\ncipher_suites = [\"RC4\"]\n{CERT}"), "unknown cipher suite `RC4`"),
            (&format!("[frontend.tls]\nmax_version = \"1.2\"\ncipher_suites = [\"TLS13_AES_128_GCM_SHA256\"]\n{CERT}"), "no listed suite"),
            (&format!("[frontend.tls]\nalpn = [\"\"]\n{CERT}"), "ALPN"),
            ("mode = \"tcp\"\n[[frontend.sni_route]]\nsni = \"a.test\"\npool = \"web\"", "passthrough"),
            ("mode = \"tcp\"\n[frontend.tls]\nmode = \"passthrough\"\n[[frontend.sni_route]]\nsni = \"a..test\"\npool = \"web\"", "not a host name"),
            ("mode = \"tcp\"\n[frontend.tls]\nmode = \"passthrough\"\n[[frontend.sni_route]]\nsni = \"a.test\"\npool = \"nope\"", "undefined pool"),
            ("mode = \"tcp\"\n[frontend.tls]\nmode = \"passthrough\"\n[[frontend.sni_route]]\nsni = \"a.test\"\npool = \"web\"\n[[frontend.sni_route]]\nsni = \"A.test\"\npool = \"web\"", "twice"),
        ] {
            let e = frontend(fe).unwrap_err();
            assert!(e.contains(needle), "{fe}\n=> {e}");
        }
    }

    #[test]
    fn pool_tls_checks() {
        assert_eq!(pool("ca_file = \"ca.pem\"\nsni = \"backend.test\""), Ok(()));
        assert_eq!(pool("verify = false"), Ok(()));
        assert!(pool("verify = true").unwrap_err().contains("ca_file"));
        assert!(pool("ca_file = \"ca.pem\"\nclient_cert = \"c.pem\"")
            .unwrap_err()
            .contains("together"));
        assert!(pool("ca_file = \"ca.pem\"\nsni = \"bad name\"")
            .unwrap_err()
            .contains("host name"));
        assert!(pool("ca_file = \"ca.pem\"\nbogus = 1")
            .unwrap_err()
            .contains("bogus"));
    }
}
