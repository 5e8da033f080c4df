//! VRRPv3 (RFC 5798): the state machine and its driver.
