//! Tests of the OMAPI objects over an in-memory store.
