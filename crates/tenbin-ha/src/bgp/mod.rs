//! BGP-4 (RFC 4271), announce only: the message codec, one neighbour's session machine and
//! the tokio driver that runs several of them.
//!
//! - [`wire`]: message framing, OPEN with capabilities (RFC 5492: multiprotocol RFC 4760,
//!   route refresh RFC 2918, 4-octet AS RFC 6793), KEEPALIVE, NOTIFICATION, ROUTE-REFRESH.
//! - [`update`]: UPDATE with ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, communities, large
//!   communities, MP_REACH_NLRI / MP_UNREACH_NLRI; checked as RFC 4271 §6.3 says.
//! - [`error`]: NOTIFICATION codes and subcodes.
//! - [`rib`]: the routes the node wants announced and the UPDATEs that get a peer there.
//! - [`session`]: the finite state machine (sans-IO, manual clock in tests).
//! - [`driver`]: TCP connections and timers for a set of neighbours; plain inputs
//!   (announce, withdraw, drain) in, [`driver::SpeakerEvent`]s out. Neighbours with BFD
//!   ([`crate::bfd`]) lose their session when BFD sees them go down.
//!
//! Received routes are parsed and validated (a malformed UPDATE ends the session with the
//! right NOTIFICATION) and then ignored. TCP MD5 (RFC 2385) is not offered.

mod codec;
pub mod driver;
pub mod error;
pub mod rib;
pub mod session;
pub mod update;
pub mod wire;

pub use error::Notification;
pub use rib::{Route, RouteAttrs};
pub use session::{Down, Event, Output, PeerConfig, Session, State};
pub use update::Origin;
