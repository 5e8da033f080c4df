//! `[dns]`, `[mux]` and `[agent]` errors found by the checks (not the schema) name the file,
//! line, column and key, as the proxy sections' do; an error about a key the file lacks is
//! placed at the table that lacks it.

use tenbin_config::{Config, ConfigError};

fn parse_err(text: &str) -> ConfigError {
    Config::parse(text, "test.toml").expect_err("must be rejected")
}

/// Line and column (1-based) where `needle` starts in `text`.
fn find(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (text[..at].matches('\n').count() + 1, at - line_start + 1)
}

const DNS: &str = r#"[dns]
listen = ["127.0.0.1:5353"]

[[dns.datacenters]]
name = "fra"

[[dns.datacenters]]
name = "nrt"

[[dns.zones]]
origin = "example.test."
soa = { mname = "ns1", rname = "hostmaster" }
records = [
  { name = "@", type = "NS", data = "ns1" },
  { name = "ns1", type = "A", data = "192.0.2.53" },
]

[[dns.gslb]]
name = "www.example.test."
pools = [
  { datacenter = "fra", addresses = ["192.0.2.1"] },
  { datacenter = "nrt", addresses = ["192.0.2.2"] },
]
"#;

#[test]
fn the_dns_fixture_is_valid() {
    Config::parse(DNS, "test.toml").unwrap();
}

#[test]
fn an_undefined_datacenter_names_its_line_column_and_key() {
    let text = DNS.replace(r#"datacenter = "nrt""#, r#"datacenter = "osa""#);
    let e = parse_err(&text);
    assert_eq!(e.key, "dns.gslb[0].pools[1].datacenter");
    assert_eq!((e.line, e.column), find(&text, r#""osa""#), "{e}");
    assert_eq!((e.line, e.column), (22, 18));
    assert!(
        e.to_string().starts_with(
            "test.toml:22:18: key `dns.gslb[0].pools[1].datacenter`: undefined datacenter `osa`; defined: fra, nrt"
        ),
        "{e}"
    );
}

#[test]
fn bad_record_data_and_names_point_at_the_value() {
    let text = DNS.replace(r#"data = "192.0.2.53""#, r#"data = "192.0.2.530""#);
    let e = parse_err(&text);
    assert_eq!(e.key, "dns.zones[0].records[1].data");
    assert_eq!((e.line, e.column), find(&text, r#""192.0.2.530""#), "{e}");
    assert!(e.message.contains("not an IPv4 address"), "{e}");

    let text = DNS.replace("www.example.test.", "www.example.other.");
    let e = parse_err(&text);
    assert_eq!(e.key, "dns.gslb[0].name");
    assert_eq!((e.line, e.column), (19, 8), "{e}");
    assert!(e.message.contains("outside every zone"), "{e}");

    let text = DNS.replace(r#"name = "nrt""#, r#"name = "FRA""#);
    let e = parse_err(&text);
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("dns.datacenters[1].name", 8, 8),
        "{e}"
    );
}

#[test]
fn a_missing_vip_check_port_points_at_the_check_that_lacks_it() {
    let text = DNS.replace(
        "pools = [\n",
        "check = { kind = \"tcp\", interval = \"2s\" }\npools = [\n",
    );
    let e = parse_err(&text);
    assert_eq!(e.key, "dns.gslb[0].check.port");
    assert_eq!((e.line, e.column), find(&text, "{ kind = \"tcp\""), "{e}");
}

const MUX: &str = r#"[mux]
interface = "eth0"
mtu = 1500

[[mux.vip]]
address = "10.0.0.1"
port = 80
protocol = "tcp"
forward = "ipip"

[[mux.vip.backend]]
address = "10.1.0.1"
mac = "02:be:00:00:00:01"

[[mux.vip.backend]]
address = "10.1.0.2"
mac = "02:be:00:00:00:02"
"#;

#[test]
fn mux_errors_name_line_column_and_key() {
    Config::parse(MUX, "test.toml").unwrap();
    let text = MUX.replace("02:be:00:00:00:02", "02:be:00:00:00");
    let e = parse_err(&text);
    assert_eq!(e.key, "mux.vip[0].backend[1].mac");
    assert_eq!((e.line, e.column), (17, 7), "{e}");
    assert!(e.message.contains("not a MAC address"), "{e}");

    let text = MUX.replace("mtu = 1500", "mtu = 1000");
    let e = parse_err(&text);
    assert_eq!((e.key.as_str(), e.line, e.column), ("mux.mtu", 3, 7), "{e}");

    let text = MUX
        .replace("\"ipip\"", "\"dsr\"")
        .replace("10.1.0.2", "2001:db8::2");
    let e = parse_err(&text);
    assert_eq!(e.key, "mux.vip[0].backend[1].address");
    assert_eq!((e.line, e.column), find(&text, "\"2001:db8::2\""), "{e}");
}

#[test]
fn agent_errors_name_line_column_and_key() {
    let text = "[agent]\ninterface = \"eth0\"\nvips = [\"10.0.0.1\"]\nreport_to = [\"10.0.0.9:7946\"]\nreport_key = \"short\"\n";
    let e = parse_err(text);
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("agent.report_key", 5, 14),
        "{e}"
    );
    assert!(e.message.contains("at least 16 bytes"), "{e}");

    // A key that is missing is placed at the table that should hold it.
    let text = text.replace("\"short\"", "\"sixteen bytes at least\"");
    let e = parse_err(&text);
    assert_eq!(e.key, "agent.backend_address");
    assert_eq!((e.line, e.column), (1, 1), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "test.toml:{}:{}: key `agent.backend_address`",
            e.line, e.column
        )),
        "{e}"
    );
}

const POOL: &str =
    "[[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9001\"\n";

#[test]
fn proxy_checks_point_at_their_own_key_or_the_table_that_lacks_it() {
    let text = format!("{POOL}[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:8443\"]\ndefault_pool = \"web\"\nmode = \"http\"\n[frontend.tls]\nmode = \"passthrough\"\n");
    let e = parse_err(&text);
    assert_eq!(e.key, "frontend[0].tls.mode");
    assert_eq!((e.line, e.column), find(&text, "\"passthrough\""), "{e}");

    let text = format!("{POOL}[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:80\"]\n");
    let e = parse_err(&text);
    assert_eq!(e.key, "frontend[0].default_pool");
    assert_eq!((e.line, e.column), find(&text, "[[frontend]]"), "{e}");
}

#[test]
fn agent_check_errors_name_their_own_key() {
    let base = "[agent]\ninterface = \"eth0\"\nvips = [\"10.0.0.1\"]\n[[agent.check]]\nvip = \"10.0.0.1\"\nport = 80\n";
    let text = format!("{base}[agent.check.health]\nkind = \"http\"\nfall = 0\n");
    let e = parse_err(&text);
    assert_eq!(e.key, "agent.check[0].health.fall");
    let (line, column) = find(&text, "fall = 0");
    assert_eq!((e.line, e.column), (line, column + "fall = ".len()), "{e}");

    let text = format!("{base}protocol = \"udp\"\n");
    let e = parse_err(&text);
    assert_eq!(e.key, "agent.check[0].protocol");
    assert_eq!((e.line, e.column), find(&text, "\"udp\""), "{e}");
}

#[test]
fn splice_is_for_plain_tcp_frontends_only() {
    let tcp = r#"
[[frontend]]
name = "t"
bind = ["127.0.0.1:9000"]
mode = "tcp"
default_pool = "p"
splice = true

[[pool]]
name = "p"
[[pool.server]]
name = "a"
address = "127.0.0.1:9001"
"#;
    let c = Config::parse(tcp, "test.toml").unwrap();
    assert!(c.frontend[0].splice);
    let http = tcp.replace(r#"mode = "tcp""#, r#"mode = "http""#);
    let e = parse_err(&http);
    assert_eq!(e.key, "frontend[0].splice");
    let (line, column) = find(&http, "splice = true");
    assert_eq!(
        (e.line, e.column),
        (line, column + "splice = ".len()),
        "{e}"
    );
    assert!(e.message.contains("mode = \"tcp\""), "{e}");
}
