//! Config changes are data: the diff between two configs names exactly what changed.

use tenbin_config::diff::{Change, ConfigDiff};
use tenbin_config::Config;

const BASE: &str = r#"
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
default_pool = "app"

[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "127.0.0.1:9001"
[[pool.server]]
name = "b"
address = "127.0.0.1:9002"
"#;

fn parse(t: &str) -> Config {
    Config::parse(t, "t.toml").unwrap()
}

#[test]
fn identical_configs_have_an_empty_diff() {
    assert!(ConfigDiff::between(&parse(BASE), &parse(BASE)).is_empty());
}

#[test]
fn server_level_changes_are_reported_per_server() {
    let new = BASE
        .replace(
            "address = \"127.0.0.1:9002\"",
            "address = \"127.0.0.1:9002\"\nweight = 5",
        )
        .replace(
            "[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9001\"\n",
            "[[pool.server]]\nname = \"c\"\naddress = \"127.0.0.1:9003\"\n",
        );
    let d = ConfigDiff::between(&parse(BASE), &parse(&new));
    let s = |x: &str| x.to_string();
    assert_eq!(
        d.changes,
        vec![
            Change::ServerRemoved {
                pool: s("app"),
                server: s("a")
            },
            Change::ServerAdded {
                pool: s("app"),
                server: s("c")
            },
            Change::ServerChanged {
                pool: s("app"),
                server: s("b")
            },
        ]
    );
}

#[test]
fn pool_settings_and_frontends_are_reported() {
    let new = BASE
        .replace(
            "name = \"app\"\n",
            "name = \"app\"\nalgorithm = \"leastconn\"\n",
        )
        .replace("bind = [\"127.0.0.1:8080\"]", "bind = [\"127.0.0.1:8081\"]");
    let d = ConfigDiff::between(&parse(BASE), &parse(&new));
    assert_eq!(
        d.changes,
        vec![
            Change::FrontendChanged("web".into()),
            Change::PoolSettingsChanged("app".into()),
        ]
    );
}
