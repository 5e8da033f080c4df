//! `[sync]`: a key long enough, given once; peers that are not this node; errors say where.

use std::path::Path;

use tenbin_config::Config;

fn parse(sync: &str) -> Result<Config, tenbin_config::ConfigError> {
    Config::parse(&format!("[sync]\n{sync}\n"), "t.toml")
}

#[test]
fn a_full_section_parses_with_defaults() {
    let c = parse(
        "listen = \"127.0.0.1:7400\"\npeers = [\"127.0.0.2:7400\"]\nkey = \"0123456789abcdef\"",
    )
    .unwrap();
    let s = c.sync.unwrap();
    assert_eq!(s.peers.len(), 1);
    assert_eq!(*s.queue.get_ref(), 65_536);
    assert_eq!(s.dead_after, std::time::Duration::from_secs(3));
    assert!(!format!("{s:?}").contains("0123456789abcdef"));
}

#[test]
fn a_short_key_names_line_column_and_key() {
    let e = parse("listen = \"127.0.0.1:7400\"\nkey = \"short\"").unwrap_err();
    assert_eq!((e.line, e.column, e.key.as_str()), (3, 7, "sync.key"));
    assert!(e.message.contains("16 bytes"), "{e}");
}

#[test]
fn key_and_key_file_together_or_neither_are_refused() {
    let e = parse("listen = \"127.0.0.1:1\"\nkey = \"0123456789abcdef\"\nkey_file = \"/k\"")
        .unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (4, "sync.key_file"));
    let e = parse("listen = \"127.0.0.1:1\"").unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (1, "sync"));
}

#[test]
fn peers_must_be_distinct_and_not_this_node() {
    let key = "key = \"0123456789abcdef\"";
    let e = parse(&format!(
        "{key}\nlisten = \"127.0.0.1:7400\"\npeers = [\"127.0.0.1:7401\", \"127.0.0.1:7401\"]"
    ))
    .unwrap_err();
    assert_eq!((e.line, e.column, e.key.as_str()), (4, 28, "sync.peers[1]"));
    let e = parse(&format!(
        "{key}\nlisten = \"127.0.0.1:7400\"\npeers = [\"127.0.0.1:7400\"]"
    ))
    .unwrap_err();
    assert_eq!(e.key, "sync.peers[0]");
    let e = parse(&format!("{key}\npeers = [\"127.0.0.1:1\"]\nqueue = 0")).unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (4, "sync.queue"));
    let e = parse(&format!(
        "{key}\npeers = [\"127.0.0.1:1\"]\nkeepalive = \"2s\"\ndead_after = \"1s\""
    ))
    .unwrap_err();
    assert_eq!(e.key, "sync.dead_after");
}

#[test]
fn unknown_keys_are_refused() {
    let e = parse("listen = \"127.0.0.1:1\"\nkey = \"0123456789abcdef\"\nsecret = 1").unwrap_err();
    assert!(e.to_string().contains("secret"), "{e}");
}

#[test]
fn the_key_file_is_read_through_the_given_reader() {
    let text = "[sync]\nlisten = \"127.0.0.1:1\"\nkey_file = \"/run/k\"\n";
    let mut c = Config::parse(text, "t.toml").unwrap();
    c.load_sync_key(text, "t.toml", |p: &Path| {
        assert_eq!(p, Path::new("/run/k"));
        Ok(" 0123456789abcdefXY \nignored\n".into())
    })
    .unwrap();
    assert_eq!(c.sync.unwrap().key.unwrap().expose(), "0123456789abcdefXY");
    let mut c = Config::parse(text, "t.toml").unwrap();
    let e = c
        .load_sync_key(text, "t.toml", |_: &Path| Ok("short\n".into()))
        .unwrap_err();
    assert_eq!((e.line, e.column, e.key.as_str()), (3, 12, "sync.key_file"));
}
