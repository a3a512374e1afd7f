//! Empty on purpose: `server` names this crate as a build-dependency so that cargo rebuilds the
//! eBPF object when it changes, and cargo builds this lib for the host to satisfy that.
#![no_std]
