//! The ISC-compatible command line (dhcpd(8)) plus modern long options.
