//! Counters and the Prometheus text endpoint.
