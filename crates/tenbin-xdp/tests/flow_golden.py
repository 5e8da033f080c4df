#!/usr/bin/env python3
"""Independent reference for tenbin's flow hash (see crates/tenbin-core/src/flow.rs docs).

Prints the golden vectors that the Rust unit tests and the BPF fixture tests compare against.
Written from the documented algorithm, not translated from the Rust code.
"""
import ipaddress

M = 0xFFFFFFFF


def rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & M


def hash_words(words, seed):
    h = seed
    for k in words:
        k = (k * 0xCC9E2D51) & M
        k = rotl(k, 15)
        k = (k * 0x1B873593) & M
        h ^= k
        h = rotl(h, 13)
        h = (h * 5 + 0xE6546B64) & M
    h ^= 4 * len(words)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M
    h ^= h >> 16
    return h


def words(src, sport, dst, dport, proto):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fam = s.version

    def addr(a):
        b = a.packed
        ws = [int.from_bytes(b[i:i + 4], "big") for i in range(0, len(b), 4)]
        return ws + [0] * (4 - len(ws))

    return addr(s) + addr(d) + [(sport << 16) | dport, (fam << 8) | proto]


if __name__ == "__main__":
    print("EMPTY_SEED1", hex(hash_words([], 1)))
    print("V4_SEED0", hex(hash_words(words("192.0.2.1", 40000, "10.0.0.1", 80, 6), 0)))
    print("V4_SEED", hex(hash_words(words("192.0.2.1", 40000, "10.0.0.1", 80, 6), 0x5EED1234)))
    print("V6_SEED", hex(hash_words(words("2001:db8::1", 40000, "2001:db8:ffff::1", 443, 17), 0x5EED1234)))
