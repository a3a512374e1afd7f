//! Which OMAPI connections the listener accepts: at most [`MAX_CONNECTIONS`] at once, and at
//! most a configured number per source address (`option xdhcpd.omapi-connections-per-source`,
//! default [`DEFAULT_PER_SOURCE`]).
//!
//! Beyond ISC (README, OMAPI): ISC dhcpd accepts connections without bound, and with a global
//! bound alone one host's idle connections lock every operator out. With a per-source bound a
//! single address cannot take more than its share; slots of connections that never
//! authenticate are freed by the session's authentication timeout. Authenticated connections
//! and those of a keyless listener count too, they are only not cut by that timeout.

use std::collections::HashMap;
use std::net::IpAddr;

/// Connections beyond this are refused at accept, bounding the memory OMAPI can use.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections one source address may hold at once unless the config says otherwise: an
/// operator's omshell needs one, a management script a few.
pub const DEFAULT_PER_SOURCE: u32 = 16;

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This source already holds its `per_source` connections.
    PerSource { open: usize },
    /// [`MAX_CONNECTIONS`] are open.
    Total,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PerSource { open } => write!(f, "{open} connections from this address are open"),
            Self::Total => write!(f, "{MAX_CONNECTIONS} connections are open"),
        }
    }
}

/// Open connections, by source address.
#[derive(Debug)]
pub struct Admission {
    per_source: usize,
    by_source: HashMap<IpAddr, usize>,
    total: usize,
}

impl Admission {
    /// `per_source` 0 means no per-source bound (only [`MAX_CONNECTIONS`]).
    pub fn new(per_source: u32) -> Self {
        Self {
            per_source: match per_source {
                0 => MAX_CONNECTIONS,
                bound => bound as usize,
            },
            by_source: HashMap::new(),
            total: 0,
        }
    }

    /// Counts a new connection from `source`, or says why it must be refused. Every admitted
    /// connection must be [`Admission::release`]d when it closes.
    pub fn admit(&mut self, source: IpAddr) -> Result<(), Refusal> {
        if self.total >= MAX_CONNECTIONS {
            return Err(Refusal::Total);
        }
        let open = self.by_source.entry(source).or_insert(0);
        if *open >= self.per_source {
            return Err(Refusal::PerSource { open: *open });
        }
        *open += 1;
        self.total += 1;
        Ok(())
    }

    /// A connection from `source` closed.
    pub fn release(&mut self, source: IpAddr) {
        if let Some(open) = self.by_source.get_mut(&source) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.by_source.remove(&source);
            }
            self.total = self.total.saturating_sub(1);
        }
    }

    /// Connections open from `source`.
    pub fn open_from(&self, source: IpAddr) -> usize {
        self.by_source.get(&source).copied().unwrap_or(0)
    }

    /// Connections open in all.
    pub fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn one_source_cannot_take_every_slot() {
        let hostile = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let operator = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let mut admission = Admission::new(3);
        for _ in 0..3 {
            admission.admit(hostile).unwrap();
        }
        assert_eq!(
            admission.admit(hostile),
            Err(Refusal::PerSource { open: 3 })
        );
        admission.admit(operator).unwrap();
        admission.release(hostile);
        admission.admit(hostile).unwrap();
        assert_eq!(admission.open_from(hostile), 3);
        assert_eq!(admission.total(), 4);
        for _ in 0..3 {
            admission.release(hostile);
        }
        admission.release(operator);
        assert_eq!(admission.total(), 0);
        assert!(admission.by_source.is_empty());
        // A release without an admission changes nothing.
        admission.release(operator);
        assert_eq!(admission.total(), 0);
    }

    #[test]
    fn the_total_bound_holds_across_sources() {
        let mut admission = Admission::new(0);
        for index in 0..MAX_CONNECTIONS {
            let source = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + index as u32 % 7));
            admission.admit(source).unwrap();
        }
        let late = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
        assert_eq!(admission.admit(late), Err(Refusal::Total));
    }
}
