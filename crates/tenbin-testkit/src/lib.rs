//! tenbin-testkit: the loopback harness tests build topologies from (dev-dependency only).
//!
//! Owns small, controllable peers that bind `127.0.0.1:0` and can be stopped and started again
//! on the same port: [`backend::http`] (answers with its name, records requests, upgrades
//! to an echo tunnel), [`backend::tcp_echo`] and [`backend::udp_echo`]; and [`tally`] to read
//! how traffic spread over them; [`skip`] decides whether a missing root or tool skips a test
//! or, under CI (`TENBIN_REQUIRE_PRIVILEGED=1`), fails it.
//!
//! Its one binary, `tls-handshakes`, is bench/tls.sh's load client for new TLS handshakes
//! (see its own docs).
//!
//! It must never be a normal dependency of a shipped crate, nor send traffic anywhere but
//! loopback.
//!
//! ```no_run
//! # async fn demo() {
//! let a = tenbin_testkit::backend::http().name("a").spawn().await;
//! let b = tenbin_testkit::backend::tcp_echo().name("b").greet().spawn().await;
//! println!("{} {}", a.addr(), b.addr());
//! a.stop().await;
//! a.start().await;
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod backend;
pub mod skip;
pub mod tally;
