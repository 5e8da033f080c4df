//! PROXY protocol v1/v2 headers towards servers.
