//! Wires config, lease store, engine and packet I/O into the running server.
