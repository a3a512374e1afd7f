//! Packet I/O: UDP sockets per interface and core, relay and broadcast replies (RFC 2131 §4.1).

pub mod arp;
pub mod decode;
pub mod icmp;
pub mod interfaces;
pub mod local_address;
pub mod ports;
pub mod socket;
