#!/usr/bin/env python3
"""Writes the hand-made seeds of every corpus (valid inputs and edge cases, each named for
what it is). Run from fuzz/: `python3 seeds/handmade.py`. seeds/capture.py adds bytes
captured from real peers (openssl, HAProxy, dig). Encoders here are written from the specs,
not from tenbin's code."""
import hashlib, hmac, os, struct, glob, shutil

def put(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)

# --- PROXY protocol (HAProxy's proxy-protocol.txt) ---
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
pp = {
    "v1-tcp4": "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
    "v1-tcp6": "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\nGET / HTTP/1.1\r\n",
    "v1-unknown": "PROXY UNKNOWN\r\n",
    "v1-unknown-with-addresses": "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    "v1-longest-line": "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    "v1-leading-zero-port": "PROXY TCP4 192.0.2.1 192.0.2.2 080 443\r\n",
    "v1-family-mismatch": "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
    "v1-port-overflow": "PROXY TCP4 192.0.2.1 192.0.2.2 65536 1\r\n",
    "v1-no-crlf-107": "PROXY TCP4 " + "1" * 96,
    "v1-prefix-only": "PROX",
    "v1-lf-only": "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
}
for n, t in pp.items():
    put("proxy_protocol", n, t)
def v2(cmd, fam, body):
    return SIG + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body
a4 = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 56324, 443)
a6 = bytes.fromhex("20010db8000000000000000000000001") + bytes.fromhex("20010db8000000000000000000000002") + struct.pack(">HH", 1, 2)
tlv = lambda t, v: bytes([t]) + struct.pack(">H", len(v)) + v
put("proxy_protocol", "v2-tcp4", v2(0x21, 0x11, a4))
put("proxy_protocol", "v2-udp4", v2(0x21, 0x12, a4))
put("proxy_protocol", "v2-tcp6", v2(0x21, 0x21, a6))
put("proxy_protocol", "v2-udp6", v2(0x21, 0x22, a6))
put("proxy_protocol", "v2-local", v2(0x20, 0x00, b""))
put("proxy_protocol", "v2-local-with-body", v2(0x20, 0x11, a4))
put("proxy_protocol", "v2-unspec", v2(0x21, 0x00, b""))
put("proxy_protocol", "v2-unix", v2(0x21, 0x31, b"\0" * 216))
put("proxy_protocol", "v2-tlv-authority-alpn", v2(0x21, 0x11, a4 + tlv(2, b"shop.example.test") + tlv(1, b"h2")))
put("proxy_protocol", "v2-short-addresses", v2(0x21, 0x21, a4))
put("proxy_protocol", "v2-bad-version", v2(0x11, 0x11, a4))
put("proxy_protocol", "v2-length-beyond", SIG + bytes([0x21, 0x11]) + struct.pack(">H", 0xffff) + a4)
put("proxy_protocol", "v2-signature-only", SIG)

# --- TLS hellos (RFC 8446 4.1.2, RFC 6066 3, RFC 7301) ---
v8 = lambda d: bytes([len(d)]) + d
v16 = lambda d: struct.pack(">H", len(d)) + d
ext = lambda t, d: struct.pack(">H", t) + v16(d)
def client_hello(exts, session=b"", version=b"\x03\x03"):
    body = version + b"\x11" * 32 + v8(session) + v16(b"\x13\x01\xc0\x2f") + v8(b"\x00")
    if exts is not None:
        body += v16(b"".join(exts))
    return b"\x01" + struct.pack(">I", len(body))[1:] + body
def records(hs, size=1 << 14, ctype=22):
    return b"".join(bytes([ctype, 3, 1]) + v16(hs[i:i + size]) for i in range(0, len(hs), size))
sni = lambda *names: ext(0, v16(b"".join(bytes([k]) + v16(n) for k, n in names)))
alpn = lambda *ps: ext(16, v16(b"".join(v8(p) for p in ps)))
sv = lambda *vs: ext(43, v8(b"".join(struct.pack(">H", v) for v in vs)))
put("tls_hello", "client-sni-alpn-versions", records(client_hello([sni((0, b"www.example.test")), alpn(b"h2", b"http/1.1"), sv(0x0304, 0x0303)], b"\x22" * 32)))
put("tls_hello", "client-no-extensions", records(client_hello(None)))
put("tls_hello", "client-empty-extensions", records(client_hello([])))
put("tls_hello", "client-split-records-7", records(client_hello([sni((0, b"split.example.test")), alpn(b"h2")]), 7))
put("tls_hello", "client-two-names-first-wins", records(client_hello([sni((1, b"other"), (0, b"First.Example"), (0, b"second.example"))])))
put("tls_hello", "client-sni-not-utf8", records(client_hello([sni((0, b"\xff\xfe.example"))])))
put("tls_hello", "client-sni-overlong", records(client_hello([ext(0, v16(b"\x00\x00\xff" + b"x" * 3))])))
put("tls_hello", "client-ext-overlong", records(client_hello([b"\x00\x10\xff\xff"])))
put("tls_hello", "client-alpn-empty-protocol", records(client_hello([alpn(b"")])))
put("tls_hello", "client-sslv3-record", records(client_hello([sni((0, b"old.example"))], b"", b"\x03\x00")))
put("tls_hello", "client-empty-record", bytes([22, 3, 1, 0, 0]))
put("tls_hello", "client-alert-record", records(b"\x02\x28", ctype=21))
put("tls_hello", "client-http-request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
put("tls_hello", "client-hello-too-large", bytes([22, 3, 1, 0, 4]) + b"\x01\x01\x00\x00")
put("tls_hello", "client-header-only", bytes([22, 3, 1, 0x02, 0x00]))
def server_hello(session, exts):
    body = b"\x03\x03" + b"\x33" * 32 + v8(session) + b"\x13\x01\x00"
    if exts is not None:
        body += v16(b"".join(exts))
    return records(b"\x02" + struct.pack(">I", len(body))[1:] + body)
put("tls_hello", "server-tls12-session", server_hello(b"\x44" * 32, None))
put("tls_hello", "server-tls13-supported-versions", server_hello(b"\x55" * 32, [ext(43, b"\x03\x04")]))
put("tls_hello", "server-supported-versions-short", server_hello(b"", [ext(43, b"\x03")]))

# --- agent-check replies (HAProxy's agent-check) ---
agent = {
    "percent": "75%\n", "up-percent-maxconn": "up 75% maxconn:30\n", "drain": "drain\n",
    "maint-reason": "maint #disk replacement\n", "down-reason-commas": "down,#disk full, 0 bytes left\n",
    "ready-up-tabs": "READY\tUP\t100%\r\n", "stopped": "stopped\n", "fail": "fail #crashed\n",
    "unknown-words": "up frobnicate 50% later\n", "percent-zero": "0%\n", "percent-max": "1000%\n",
    "percent-over": "1001%\n", "percent-negative": "-5%\n", "percent-empty": "%\n",
    "maxconn-bad": "maxconn:x\n", "maxconn-overflow": "maxconn:4294967296\n", "empty": "",
    "only-newline": "\n", "only-hash": "#\n", "nul-in-line": "up\x0050%\n",
    "second-line-ignored": "up\ndown 0%\n", "not-utf8": b"up \xff\xfe 50%\n",
}
for n, t in agent.items():
    put("agent_reply", n, t)

# --- HTTP check responses (RFC 9112) ---
http = {
    "200-length": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
    "200-chunked-ext-trailer": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n6\r\npedia \r\n0\r\nExpires: never\r\n\r\n",
    "200-chunked-uppercase-size": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
    "200-until-close": "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close",
    "204": "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
    "304": "HTTP/1.1 304 Not Modified\r\n\r\n",
    "503-drain": "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\ndrain",
    "bad-content-length": "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "two-content-lengths": "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "chunk-size-overflow": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n",
    "chunk-size-max": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx\r\n",
    "chunk-size-bad": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "head-partial": "HTTP/1.1 200 OK\r\nContent-",
    "status-4-digits": "HTTP/1.1 2000 OK\r\n\r\n",
    "not-http": "SSH-2.0-OpenSSH_9.2\r\n",
    "lf-only": "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
}
for n, t in http.items():
    put("http_check_response", n, t)

# --- host-agent reports (the wire format of crates/tenbin-xdp/src/report.rs, HMAC-SHA256) ---
KEY = b"fuzz-secret-0123456789"  # the key of fuzz_targets/host_report.rs
def addr(a):
    import ipaddress
    ip = ipaddress.ip_address(a)
    return (b"\x04" + ip.packed + b"\0" * 12) if ip.version == 4 else (b"\x06" + ip.packed)
def report(seq, backend, services, version=1, count=None, key=KEY):
    body = b"TBHR" + bytes([version, 0]) + struct.pack(">HQ", len(services) if count is None else count, seq) + addr(backend)
    for vip, port, proto, ok in services:
        body += addr(vip) + struct.pack(">HBB", port, proto, ok)
    return body + hmac.new(key, body, hashlib.sha256).digest()
put("host_report", "v4-two-services", report(1_700_000_000_000_000, "10.0.0.2", [("192.0.2.10", 80, 6, 1), ("192.0.2.10", 53, 17, 0)]))
put("host_report", "v6-one-service", report(7, "2001:db8::2", [("2001:db8::10", 443, 6, 1)]))
put("host_report", "no-services", report(0, "10.0.0.3", []))
put("host_report", "64-services", report(1, "10.0.0.4", [("192.0.2.%d" % (i + 1), 80, 6, i % 2) for i in range(64)]))
put("host_report", "65-services", report(1, "10.0.0.4", [("192.0.2.1", 80, 6, 1)] * 65))
put("host_report", "healthy-byte-7", report(2, "10.0.0.5", [("192.0.2.1", 0, 6, 7)]))
put("host_report", "wrong-key", report(3, "10.0.0.6", [("192.0.2.1", 80, 6, 1)], key=b"not-the-fuzz-key-000"))
put("host_report", "version-2", report(4, "10.0.0.7", [], version=2))
put("host_report", "count-says-more", report(5, "10.0.0.8", [("192.0.2.1", 80, 6, 1)], count=2))
bad = bytearray(report(6, "10.0.0.9", [("192.0.2.1", 80, 6, 1)])); bad[16] = 5
put("host_report", "family-5-signed", bytes(bad[:-32]) + hmac.new(KEY, bytes(bad[:-32]), hashlib.sha256).digest())
put("host_report", "magic-only", b"TBHR")

# --- config: every example, plus edge cases ---
os.makedirs("corpus/config", exist_ok=True)
for path in sorted(glob.glob("../examples/*.toml")):
    shutil.copy(path, f"corpus/config/example-{os.path.basename(path)}")
cfg = {
    "empty": "",
    "unknown-key": "[admin]\nlisten = \"127.0.0.1:9090\"\nlisen = 1\n",
    "bad-toml": "[[pool]\nname = \"x\"\n",
    "duplicate-pool": "[[pool]]\nname = \"a\"\n[[pool.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n[[pool]]\nname = \"a\"\n[[pool.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n",
    "unknown-pool-reference": "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:1\"]\nmode = \"http\"\ndefault_pool = \"nope\"\n",
    "bad-regex": "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:1\"]\nmode = \"http\"\ndefault_pool = \"p\"\n[[frontend.rule]]\npool = \"p\"\npath_regex = \"(\"\n[[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"s\"\naddress = \"127.0.0.1:2\"\n",
    "persistence-insert": "[[pool]]\nname = \"p\"\n[pool.persistence]\nmode = \"cookie-insert\"\ncookie = \"SRV\"\nindirect = true\nmaxidle = \"30m\"\n[[pool.server]]\nname = \"s\"\naddress = \"127.0.0.1:2\"\n",
    "multibyte-error-column": "# 日本語のコメント\n[admin]\nlisten = \"天秤\"\n",
    "crlf-lines": "[admin]\r\nlisten = \"127.0.0.1:9090\"\r\nx = 1\r\n",
}
for n, t in cfg.items():
    put("config", n, t)

# --- persistence (text format of fuzz_targets/persist.rs) ---
persist = {
    "insert-indirect-dated": "mode=cookie-insert name=SRV indirect maxidle=60 server=1 value=abc\nGET /\nCookie: a=1; SRV=s1|1699999990|1699999000; b=2\n\n200\nContent-Type: text/html\nSet-Cookie: SRV=evil; Path=/\n",
    "insert-nocache": "mode=cookie-insert nocache server=2\nGET /\nCookie: SRV=\"s2\"\n\n200\nCache-Control: no-store, max-age=0\n",
    "insert-draining-pinned": "mode=cookie-insert states=ad server=1\nGET /\nCookie: SRV=s1\n\n200\n",
    "rewrite": "mode=cookie-rewrite name=SERVERID\nGET /\nCookie: SERVERID=s0\n\n200\nSet-Cookie: SERVERID=placeholder; Path=/; HttpOnly\n",
    "passive": "mode=cookie-passive name=JSESSIONID value=0123ABCD server=2\nGET /\nCookie: JSESSIONID=0123ABCD\n\n200\nSet-Cookie: JSESSIONID=0123ABCD; Path=/\n",
    "prefix": "mode=cookie-prefix name=JS value=app-session\nGET /\nCookie: JS=s1~app-session; other=x\n\n200\nSet-Cookie: JS=app-session; Path=/app; Secure\n",
    "prefix-no-separator": "mode=cookie-prefix name=JS\nGET /\nCookie: JS=plain\n\n200\n",
    "hash-learn": "mode=cookie-hash name=sid learn\nGET /\nCookie: sid=xyz\n\n200\nSet-Cookie: sid=xyz\n",
    "url-path-param": "mode=url-param name=jsessionid learn redirects\nGET /shop/cart;jsessionid=abc123?jsessionid=zzz&x=1\n\n302\nLocation: /next?a=1#top\n",
    "url-query-server": "mode=url-param name=srv redirects server=2\nGET /a?x=1&srv=s2\n\n301\nLocation: http://x.test/p\n",
    "url-empty-values": "mode=url-param name=sid\nGET /a;sid=?sid=&sid\n\n200\n",
    "header-terminal": "mode=header name=X-Terminal-Id learn\nGET /\nX-Terminal-Id: term-42\n\n200\n",
    "source-prefix": "mode=source prefix=24 client=192.0.2.200\nGET /\n\n200\n",
    "source-tableless-v6": "mode=source tableless client=2001:db8::1\nGET /\n\n200\n",
    "tls-session": "mode=tls-session\nGET /\n\n200\n",
    "cookies-malformed": "mode=cookie-insert\nGET /\nCookie: garbage;;==;=x; SRV\nCookie: SRV=s9\n\n200\nSet-Cookie: =; ;\n",
    "all-down": "mode=cookie-insert states=DDm redispatch\nGET /\nCookie: SRV=s0\n\n200\n",
}
for n, t in persist.items():
    put("persist", n, t)

# --- HTTP rules (text format of fuzz_targets/http_rules.rs) ---
rules = {
    "examples-content-switching": "default=app\nrule pool=static ext=png ext=jpg ext=css ext=js\nrule pool=api host=*.example.com regex=^/api/v[0-9]+/ method=GET method=POST\nrule pool=static header=User-Agent:(?i)mobile|android|iphone\nreq GET /a/b.PNG host=x\nreq GET /api/v2/users host=a.example.com\nreq POST /api/v2/users host=Static.Example.com:8080\nreq GET / host=x User-Agent:iPhone\n",
    "hosts-exact-wildcard": "default=app\nrule pool=static host=static.example.com\nrule pool=api host=*.example.com\nreq GET / host=Static.Example.com:8080\nreq GET / host=a.b.example.com\nreq GET / host=example.com\nreq GET / host=badexample.com\nreq GET http://u@static.example.com:81/ \nreq GET / host=[::1]:80\n",
    "all-conditions": "default=app\nrule pool=api prefix=/m/ method=get method=HEAD header=User-Agent:Mobile query=lang=ja\nreq GET /m/a?x=1&lang=ja User-Agent:Mobile\nreq POST /m/a?lang=ja User-Agent:Mobile\nreq GET /m/a?lang=en User-Agent:Mobile\n",
    "exact-and-query-presence": "rule pool=static exact=/x\nrule pool=api query=debug\nreq GET /x\nreq GET /x/\nreq GET /y?debug\nreq GET /y?nodebug=1\n",
    "extensions-odd": "default=app\nrule pool=static ext=.PNG ext=\nrule pool=api ext=tar.gz\nreq GET /a.png\nreq GET /dir.png/file\nreq GET /a.\nreq GET /x.tar.gz\nreq GET /.png\n",
    "compile-errors": "default=nope\nrule pool=zzz\nrule pool=app regex=(\nrule pool=app method=G\\x20T\nrule pool=app header=Bad\\x20Name:x\n",
    "wildcard-only": "rule pool=api host=*\nreq GET / host=a\nreq GET /\n",
}
for n, t in rules.items():
    put("http_rules", n, t)
# --- anycast DNS self-check replies (RFC 1035 §4.1.1): 2 bytes of query id, then the reply ---
def dns_reply(id_, flags, rcode, qd=1, an=0, body=b""):
    return struct.pack(">HBBHHHH", id_, flags, rcode, qd, an, 0, 0) + body
soa_q = b"\x07anycast\x04test\x00" + struct.pack(">HH", 6, 1)
soa_rr = b"\xc0\x0c" + struct.pack(">HHIH", 6, 1, 300, 0)
for n, (flags, rcode, qd, an, body) in {
    "aa-noerror": (0x84, 0, 1, 0, soa_q),
    "aa-noerror-soa": (0x84, 0, 1, 1, soa_q + soa_rr),
    "not-authoritative": (0x80, 0, 1, 0, soa_q),
    "refused": (0x84, 5, 1, 0, soa_q),
    "servfail": (0x84, 2, 1, 0, soa_q),
    "query-not-reply": (0x04, 0, 1, 0, soa_q),
    "no-question": (0x84, 0, 0, 0, b""),
    "truncated-question": (0x84, 0, 1, 0, soa_q[:5]),
}.items():
    put("dns_check_reply", n, struct.pack(">H", 0xbeef) + dns_reply(0xbeef, flags, rcode, qd, an, body))
put("dns_check_reply", "other-id", struct.pack(">H", 1) + dns_reply(2, 0x84, 0, 1, 0, soa_q))
put("dns_check_reply", "header-only-short", struct.pack(">H", 1) + b"\x00\x01\x84")
put("dns_check_reply", "zone-name", "example.com.")
put("dns_check_reply", "zone-root", ".")

print("seeds written")
