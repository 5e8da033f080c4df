//! Every file in `examples/` parses, and broken files are rejected with a located error.

use std::path::PathBuf;

use tenbin_config::{Config, ConfigError};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn examples() -> Vec<(String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn parse_err(text: &str) -> ConfigError {
    Config::parse(text, "test.toml").expect_err("must be rejected")
}

#[test]
fn every_example_parses() {
    let all = examples();
    assert!(
        all.len() >= 3,
        "expected the shipped examples, found {}",
        all.len()
    );
    for (file, text) in all {
        if let Err(e) = Config::parse(&text, &file) {
            panic!("{e}");
        }
    }
}

#[test]
fn an_unknown_key_injected_into_every_example_is_rejected_with_its_location() {
    for (file, text) in examples() {
        // Inject right under the first table header, whatever section it opens.
        let header = text
            .lines()
            .find(|l| l.starts_with('['))
            .expect("examples have tables")
            .to_string();
        let at = text.find(&header).unwrap();
        let line_of_table = text[..at].matches('\n').count() + 1;
        let broken = text.replacen(&header, &format!("{header}\nbogus_key = 1"), 1);
        let e = Config::parse(&broken, &file).expect_err("unknown key must be rejected");
        assert_eq!(e.line, line_of_table + 1, "{file}: {e}");
        assert!(e.key.ends_with("bogus_key"), "{file}: key was {}", e.key);
        assert!(e.message.contains("unknown field `bogus_key`"), "{e}");
        assert!(
            e.message.contains("expected one of") || e.message.contains("expected `"),
            "lists what is accepted: {e}"
        );
    }
}

#[test]
fn type_errors_name_line_column_and_key() {
    let text = "[[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"a\"\naddress = \"10.0.0.1\"\n";
    let e = parse_err(text);
    assert_eq!((e.line, e.column), (5, 11), "{e}");
    assert_eq!(e.key, "pool[0].server[0].address");
    assert!(
        e.to_string()
            .starts_with("test.toml:5:11: key `pool[0].server[0].address`"),
        "{e}"
    );
}

#[test]
fn bad_durations_and_enum_values_say_what_is_accepted() {
    let e = parse_err("[[pool]]\nname=\"p\"\nalgorithm = \"fastest\"\n[[pool.server]]\nname=\"a\"\naddress=\"127.0.0.1:1\"\n");
    assert_eq!(e.line, 3);
    assert!(
        e.message.contains("roundrobin") && e.message.contains("maglev"),
        "{e}"
    );
    let e = parse_err("[[pool]]\nname=\"p\"\nslow_start = \"soon\"\n[[pool.server]]\nname=\"a\"\naddress=\"127.0.0.1:1\"\n");
    assert_eq!((e.line, e.key.as_str()), (3, "pool[0].slow_start"), "{e}");
}

const TWO_SERVERS: &str = "[[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n[[pool.server]]\nname = \"b\"\naddress = \"127.0.0.1:2\"\n";

#[test]
fn an_undefined_pool_is_named_with_the_defined_ones() {
    let text = format!("{TWO_SERVERS}[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:80\"]\ndefault_pool = \"nope\"\n");
    let e = parse_err(&text);
    assert_eq!(e.line, 12, "{e}");
    assert_eq!(e.key, "frontend[0].default_pool");
    assert!(
        e.message.contains("undefined pool `nope`") && e.message.contains("defined pools: p"),
        "{e}"
    );
}

#[test]
fn duplicates_are_rejected() {
    let dup_server = TWO_SERVERS.replace("name = \"b\"", "name = \"a\"");
    let e = parse_err(&dup_server);
    assert_eq!(
        (e.line, e.key.as_str()),
        (7, "pool[0].server[1].name"),
        "{e}"
    );
    let dup_addr = TWO_SERVERS.replace("127.0.0.1:2", "127.0.0.1:1");
    assert_eq!(parse_err(&dup_addr).key, "pool[0].server[1].address");
    let dup_pool = format!("{TWO_SERVERS}{}", TWO_SERVERS.replace("127.0.0", "127.0.1"));
    let e = parse_err(&dup_pool);
    assert_eq!((e.line, e.key.as_str()), (10, "pool[1].name"), "{e}");
}

#[test]
fn impossible_weights_and_limits_are_rejected() {
    let e =
        parse_err(&TWO_SERVERS.replace("name = \"a\"\n", "name = \"a\"\nweight = 4000000000\n"));
    assert_eq!(e.key, "pool[0].server[0].weight", "{e}");
    let all_zero = TWO_SERVERS
        .replace(
            "address = \"127.0.0.1:1\"",
            "address = \"127.0.0.1:1\"\nweight = 0",
        )
        .replace(
            "address = \"127.0.0.1:2\"",
            "address = \"127.0.0.1:2\"\nweight = 0",
        );
    assert!(parse_err(&all_zero).message.contains("weight 0"));
    let e = parse_err(&TWO_SERVERS.replace("name = \"a\"\n", "name = \"a\"\nmaxconn = 0\n"));
    assert_eq!(e.key, "pool[0].server[0].maxconn");
    let e = parse_err(&TWO_SERVERS.replace(
        "name = \"p\"\n",
        "name = \"p\"\nmaglev_table_size = 65536\n",
    ));
    assert_eq!(
        (e.line, e.key.as_str()),
        (3, "pool[0].maglev_table_size"),
        "{e}"
    );
    let e = parse_err(&TWO_SERVERS.replace(
        "name = \"p\"\n",
        "name = \"p\"\nalgorithm = \"maglev\"\nhash_on = \"body\"\n",
    ));
    assert!(e.message.contains("header:NAME"), "{e}");
}

#[test]
fn rules_need_conditions_and_valid_regexes() {
    let fe = "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:80\"]\ndefault_pool = \"p\"\n";
    let e = parse_err(&format!(
        "{TWO_SERVERS}{fe}[[frontend.rule]]\npool = \"p\"\n"
    ));
    assert!(e.message.contains("at least one condition"), "{e}");
    let e = parse_err(&format!(
        "{TWO_SERVERS}{fe}[[frontend.rule]]\npool = \"p\"\npath_regex = \"(unclosed\"\n"
    ));
    assert_eq!(
        (e.line, e.key.as_str()),
        (15, "frontend[0].rule[0].path_regex"),
        "{e}"
    );
}
