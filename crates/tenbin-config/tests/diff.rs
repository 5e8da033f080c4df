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
    let lines: Vec<String> = d.changes.iter().map(Change::describe).collect();
    assert_eq!(
        lines,
        [
            "pool app: server a removed",
            "pool app: server c added",
            "pool app: server b changed"
        ]
    );
    // Changes carry the new section: the changed server with its new weight.
    match &d.changes[2] {
        Change::ServerChanged { pool, server } => {
            assert_eq!(pool, "app");
            assert_eq!(*server.weight.get_ref(), 5);
        }
        other => panic!("{other:?}"),
    }
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
    let lines: Vec<String> = d.changes.iter().map(Change::describe).collect();
    assert_eq!(lines, ["frontend web changed", "pool app settings changed"]);
    match &d.changes[..] {
        [Change::FrontendChanged(f), Change::PoolSettingsChanged(p)] => {
            assert_eq!(f.bind[0].get_ref().port(), 8081);
            assert_eq!(p.algorithm, tenbin_config::AlgorithmName::Leastconn);
            assert_eq!(p.server.len(), 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sections_carry_their_new_value() {
    let new = format!("[admin]\nlisten = \"127.0.0.1:9900\"\n{BASE}");
    let d = ConfigDiff::between(&parse(BASE), &parse(&new));
    match &d.changes[..] {
        [Change::Admin(Some(a))] => assert_eq!(a.listen.port(), 9900),
        other => panic!("{other:?}"),
    }
    let back = ConfigDiff::between(&parse(&new), &parse(BASE));
    assert_eq!(back.changes, [Change::Admin(None)]);
}
