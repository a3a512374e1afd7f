//! Two-peer harness tests.
