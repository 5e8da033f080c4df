//! `[admin]`: off loopback the admin API must ask for a token, and errors say where.

use std::path::Path;

use tenbin_config::Config;

const POOL: &str = r#"
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
default_pool = "app"

[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "127.0.0.1:9001"
"#;

fn parse(admin: &str) -> Result<Config, tenbin_config::ConfigError> {
    Config::parse(&format!("[admin]\n{admin}\n{POOL}"), "t.toml")
}

#[test]
fn loopback_needs_no_token() {
    let c = parse("listen = \"127.0.0.1:9900\"").unwrap();
    assert!(c.admin.unwrap().token.is_none());
    parse("listen = \"[::1]:9900\"").unwrap();
}

#[test]
fn off_loopback_without_a_token_names_line_column_and_key() {
    let e = parse("listen = \"0.0.0.0:9900\"").unwrap_err();
    assert_eq!((e.line, e.column, e.key.as_str()), (2, 10, "admin.listen"));
    assert!(e.message.contains("token"), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("t.toml:2:10: key `admin.listen`"),
        "{text}"
    );
}

#[test]
fn off_loopback_with_a_token_is_accepted_and_not_printed() {
    let c = parse("listen = \"0.0.0.0:9900\"\ntoken = \"s3cret\"").unwrap();
    let admin = c.admin.unwrap();
    assert_eq!(admin.token.as_ref().unwrap().expose(), "s3cret");
    assert!(!format!("{admin:?}").contains("s3cret"));
}

#[test]
fn token_and_token_file_together_are_refused() {
    let e = parse("listen = \"127.0.0.1:1\"\ntoken = \"x\"\ntoken_file = \"/t\"").unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (4, "admin.token_file"));
}

#[test]
fn an_empty_token_is_refused() {
    let e = parse("listen = \"127.0.0.1:1\"\ntoken = \"  \"").unwrap_err();
    assert_eq!((e.line, e.column, e.key.as_str()), (3, 9, "admin.token"));
}

#[test]
fn the_token_file_is_read_through_the_given_reader() {
    let text = format!("[admin]\nlisten = \"0.0.0.0:1\"\ntoken_file = \"/run/t\"\n{POOL}");
    let mut c = Config::parse(&text, "t.toml").unwrap();
    c.load_admin_token(&text, "t.toml", |p: &Path| {
        assert_eq!(p, Path::new("/run/t"));
        Ok("  tok3n \nignored\n".into())
    })
    .unwrap();
    assert_eq!(c.admin.unwrap().token.unwrap().expose(), "tok3n");

    let mut c = Config::parse(&text, "t.toml").unwrap();
    let e = c
        .load_admin_token(&text, "t.toml", |_: &Path| {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        })
        .unwrap_err();
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (3, 14, "admin.token_file")
    );
}
