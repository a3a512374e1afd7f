//! The sans-IO DHCPv4 protocol engine (RFC 2131/2132): packets and time in, decisions out.
