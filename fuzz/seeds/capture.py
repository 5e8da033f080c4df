#!/usr/bin/env python3
# Captures real peer bytes for the fuzz seed corpora: ClientHellos from openssl s_client,
# ServerHellos from openssl s_server, PROXY v1/v2 headers from HAProxy, ECS queries from dig.
# Run from fuzz/ (loopback only, needs openssl, haproxy and dig): `python3 seeds/capture.py corpus`
import socket, subprocess, sys, os, time, threading

def listen_tcp():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4); return s

def recv_first(s, timeout=5):
    s.settimeout(timeout)
    c, _ = s.accept(); c.settimeout(2)
    data = b""
    try:
        while len(data) < 65536:
            d = c.recv(65536)
            if not d: break
            data += d
            if len(data) > 5 and data[0] == 22:
                need = 5 + int.from_bytes(data[3:5], "big")
                if len(data) >= need: break
    except socket.timeout:
        pass
    c.close()
    return data

out = sys.argv[1]
os.makedirs(out + "/tls_hello", exist_ok=True)
os.makedirs(out + "/proxy_protocol", exist_ok=True)
os.makedirs(out + "/dns_query", exist_ok=True)

def client_hello(name, args):
    s = listen_tcp(); port = s.getsockname()[1]
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"] + args,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = recv_first(s)
    p.kill(); p.wait(); s.close()
    open(f"{out}/tls_hello/{name}", "wb").write(data)
    return data

ch13 = client_hello("openssl-tls13-sni-alpn", ["-servername", "Shop.Example.TEST", "-alpn", "h2,http/1.1"])
client_hello("openssl-tls12-sni-session", ["-tls1_2", "-servername", "legacy.example.test", "-no_ticket"])
client_hello("openssl-no-sni", ["-noservername"])

# ServerHello: a real s_server answering a captured TLS 1.2 ClientHello.
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                "-days", "1", "-subj", "/CN=localhost"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for ver, hello in [("tls12", "openssl-tls12-sni-session"), ("tls13", "openssl-tls13-sni-alpn")]:
    probe = listen_tcp(); port = probe.getsockname()[1]; probe.close()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", str(port), "-cert", "c.pem", "-key", "k.pem", "-naccept", "1"],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            c = socket.create_connection(("127.0.0.1", port)); break
        except OSError:
            time.sleep(0.1)
    c.sendall(open(f"{out}/tls_hello/{hello}", "rb").read())
    c.settimeout(3); data = b""
    try:
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            d = c.recv(65536)
            if not d: break
            data += d
    except socket.timeout:
        pass
    c.close(); srv.kill(); srv.wait()
    open(f"{out}/tls_hello/openssl-serverhello-{ver}", "wb").write(data[:5 + int.from_bytes(data[3:5], "big")])

# PROXY headers from HAProxy.
for name, opt, fam in [("haproxy-v1-tcp4", "send-proxy", "127.0.0.1"), ("haproxy-v2-tcp4", "send-proxy-v2", "127.0.0.1"),
                       ("haproxy-v1-tcp6", "send-proxy", "::1"), ("haproxy-v2-tcp6", "send-proxy-v2", "::1"),
                       ("haproxy-v2-tlvs", "send-proxy-v2 proxy-v2-options authority,crc32c,unique-id", "127.0.0.1")]:
    back = listen_tcp(); bport = back.getsockname()[1]
    probe = socket.socket(socket.AF_INET6 if ":" in fam else socket.AF_INET); probe.bind((fam, 0)); fport = probe.getsockname()[1]; probe.close()
    bind = f"[{fam}]:{fport}" if ":" in fam else f"{fam}:{fport}"
    cfg = f"""global
  maxconn 10
defaults
  mode tcp
  timeout connect 2s
  timeout client 2s
  timeout server 2s
frontend f
  bind {bind}
  unique-id-format fuzz-%rt
  default_backend b
backend b
  server s 127.0.0.1:{bport} {opt}
"""
    open("h.cfg", "w").write(cfg)
    h = subprocess.Popen(["haproxy", "-db", "-f", "h.cfg"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            c = socket.create_connection((fam, fport)); break
        except OSError:
            time.sleep(0.1)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    back.settimeout(5); bc, _ = back.accept(); bc.settimeout(1); data = b""
    try:
        while True:
            d = bc.recv(4096)
            if not d: break
            data += d
    except socket.timeout:
        pass
    bc.close(); c.close(); h.kill(); h.wait(); back.close()
    open(f"{out}/proxy_protocol/{name}", "wb").write(data)

# DNS queries with ECS from dig.
for name, args in [("dig-ecs-v4-24", ["+subnet=10.1.2.0/24"]), ("dig-ecs-v6-56", ["+subnet=2001:db8:1:200::/56"]),
                   ("dig-ecs-zero", ["+subnet=0.0.0.0/0"]), ("dig-ecs-v4-23", ["+subnet=10.1.2.0/23"]),
                   ("dig-cookie-nsid", ["+nsid", "+cookie"]), ("dig-noedns", ["+noedns"])]:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); port = u.getsockname()[1]
    p = subprocess.Popen(["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=1", "www.example.test", "A"] + args,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    u.settimeout(5); data, _ = u.recvfrom(4096); p.kill(); p.wait(); u.close()
    open(f"{out}/dns_query/{name}", "wb").write(data)
print("captured")
