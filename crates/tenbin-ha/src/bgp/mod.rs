//! BGP-4 (RFC 4271), announce only: the session machine and its driver.
