#!/usr/bin/env python3
"""Writes geoip-test.mmdb, the synthetic MaxMind-format database of tenbin-dns's geoip tests.

Every network is documentation or loopback space, so the file says nothing about the real
world. Regenerate (only when the tests need new networks) with:

    python3 -m venv /tmp/mmdb && /tmp/mmdb/bin/pip install mmdb-writer==0.2.7
    /tmp/mmdb/bin/python crates/tenbin-dns/tests/data/make_geoip.py

The records follow GeoIP2-Country's shape (country.iso_code, continent.code) plus one custom
top-level field, `pop`, to show mapping by a field of one's own.
"""

import os

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def country(iso, continent):
    return {"country": {"iso_code": iso}, "continent": {"code": continent}}


RECORDS = [
    # Loopback client networks the tests send from (or claim by ECS).
    ("127.0.4.0/24", country("JP", "AS")),
    ("127.0.5.0/24", country("DE", "EU")),
    # A country no region names: the continent decides.
    ("127.0.6.0/24", country("FR", "EU")),
    # Known to the database but mapped by nothing: the default region.
    ("127.0.7.0/24", country("AQ", "AN")),
    # A custom field only.
    ("127.0.8.0/25", {"pop": "nrt"}),
    # Documentation space, both families.
    ("198.51.100.0/24", country("JP", "AS")),
    ("203.0.113.0/25", country("DE", "EU")),
    ("2001:db8:1::/48", country("JP", "AS")),
    ("2001:db8:2::/48", country("DE", "EU")),
    # Inside the config's 10.0.0.0/8 network: the network map must win.
    ("10.9.0.0/16", country("JP", "AS")),
]


def main():
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="tenbin-test-country",
        languages=["en"],
        description={"en": "synthetic test data for tenbin-dns; not real geography"},
    )
    for cidr, record in RECORDS:
        writer.insert_network(IPSet([cidr]), record)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "geoip-test.mmdb")
    writer.to_db_file(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
