//! Moving protocol messages over a Unix stream socket: splitting the incoming byte stream into
//! JSON requests ([`framing`]), reading them with a deadline ([`reader`]), and getting a
//! listening socket, bound by us or inherited from systemd ([`socket`]).

pub mod framing;
pub mod reader;
pub mod socket;
