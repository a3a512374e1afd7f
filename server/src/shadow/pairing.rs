//! Pairs each client message seen on the wire with the reply ISC dhcpd sent to it: same
//! transaction id and client hardware address (RFC 2131 §4.1: the server copies `xid` and
//! `chaddr` into its reply), and a reply of the kind that answers the message (a DHCPOFFER
//! answers a DHCPDISCOVER, a DHCPACK or DHCPNAK a DHCPREQUEST or DHCPINFORM, …). A client that
//! retransmits has several messages waiting under one key; a reply takes the oldest it answers.
//!
//! Bounded: at most `capacity` messages wait; one that ISC has not answered within `timeout`
//! comes back from [`Pairing::expire`] (ISC did not answer it). Time is an argument
//! (milliseconds of a monotonic clock), so the table is tested without waiting.

use std::collections::{HashMap, VecDeque};

/// A transaction as both sides name it: `xid`, `htype`, and the hardware address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairKey {
    pub xid: u32,
    pub htype: u8,
    pub chaddr: [u8; 16],
}

/// The DHCP message type of a request or a reply (option 53), `None` for BOOTP.
pub type MessageKind = Option<u8>;

/// Whether a reply of kind `reply` answers a request of kind `request` (RFC 2131 table 3; RFC
/// 4388 for DHCPLEASEQUERY; BOOTP, RFC 951, answers BOOTP).
pub fn answers(request: MessageKind, reply: MessageKind) -> bool {
    match (request, reply) {
        (None, None) => true,
        // DHCPDISCOVER → DHCPOFFER.
        (Some(1), Some(2)) => true,
        // DHCPREQUEST → DHCPACK or DHCPNAK; DHCPINFORM → DHCPACK.
        (Some(3), Some(5 | 6)) | (Some(8), Some(5)) => true,
        // DHCPLEASEQUERY → DHCPLEASEUNASSIGNED, DHCPLEASEUNKNOWN or DHCPLEASEACTIVE.
        (Some(10), Some(11..=13)) => true,
        _ => false,
    }
}

struct Waiting<T> {
    sequence: u64,
    kind: MessageKind,
    value: T,
}

/// Messages waiting for ISC's reply.
pub struct Pairing<T> {
    waiting: HashMap<PairKey, VecDeque<Waiting<T>>>,
    /// Every message in arrival order, for expiry (entries already paired are skipped).
    order: VecDeque<(u64, PairKey, u64)>,
    next_sequence: u64,
    len: usize,
    capacity: usize,
    timeout_ms: u64,
}

impl<T> Pairing<T> {
    pub fn new(capacity: usize, timeout_ms: u64) -> Self {
        Self {
            waiting: HashMap::new(),
            order: VecDeque::new(),
            next_sequence: 0,
            len: 0,
            capacity,
            timeout_ms,
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps `value` until ISC's reply to the message `key`/`kind` seen at `now_ms`. When the
    /// table is full the oldest waiting message is pushed out and returned (it is then counted
    /// as not compared).
    pub fn insert(&mut self, now_ms: u64, key: PairKey, kind: MessageKind, value: T) -> Option<T> {
        let evicted = if self.len >= self.capacity {
            self.pop_oldest()
        } else {
            None
        };
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.waiting.entry(key).or_default().push_back(Waiting {
            sequence,
            kind,
            value,
        });
        self.order
            .push_back((now_ms.saturating_add(self.timeout_ms), key, sequence));
        self.len += 1;
        evicted
    }

    /// The oldest message under `key` that a reply of kind `reply` answers, taken out.
    pub fn take(&mut self, key: &PairKey, reply: MessageKind) -> Option<T> {
        let queue = self.waiting.get_mut(key)?;
        let position = queue.iter().position(|entry| answers(entry.kind, reply))?;
        let entry = queue.remove(position)?;
        if queue.is_empty() {
            self.waiting.remove(key);
        }
        self.len -= 1;
        Some(entry.value)
    }

    /// The messages whose time ran out at `now_ms`, oldest first.
    pub fn expire(&mut self, now_ms: u64) -> Vec<T> {
        let mut expired = Vec::new();
        while let Some(&(deadline, key, sequence)) = self.order.front() {
            let waiting = self
                .waiting
                .get(&key)
                .is_some_and(|queue| queue.iter().any(|entry| entry.sequence == sequence));
            if waiting && deadline > now_ms {
                break;
            }
            if !waiting {
                // Paired already: only its order entry is left.
                self.order.pop_front();
                continue;
            }
            expired.extend(self.pop_oldest());
        }
        expired
    }

    /// Takes out the oldest message still waiting (skipping paired ones' order entries).
    fn pop_oldest(&mut self) -> Option<T> {
        while let Some((_, key, sequence)) = self.order.pop_front() {
            let Some(queue) = self.waiting.get_mut(&key) else {
                continue;
            };
            let Some(position) = queue.iter().position(|entry| entry.sequence == sequence) else {
                continue;
            };
            let entry = queue.remove(position);
            if queue.is_empty() {
                self.waiting.remove(&key);
            }
            self.len -= 1;
            return entry.map(|entry| entry.value);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(xid: u32, last: u8) -> PairKey {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&[2, 0, 0, 0, 0, last]);
        PairKey {
            xid,
            htype: 1,
            chaddr,
        }
    }

    const DISCOVER: MessageKind = Some(1);
    const OFFER: MessageKind = Some(2);
    const REQUEST: MessageKind = Some(3);
    const ACK: MessageKind = Some(5);

    #[test]
    fn a_reply_takes_the_message_it_answers() {
        let mut pairing = Pairing::new(16, 5_000);
        // One xid for the whole exchange, as dhclient uses.
        pairing.insert(0, key(7, 1), DISCOVER, "discover");
        pairing.insert(10, key(7, 1), REQUEST, "request");
        assert_eq!(pairing.take(&key(7, 1), ACK), Some("request"));
        assert_eq!(pairing.take(&key(7, 2), OFFER), None, "another client");
        assert_eq!(pairing.take(&key(8, 1), OFFER), None, "another xid");
        assert_eq!(pairing.take(&key(7, 1), OFFER), Some("discover"));
        assert!(pairing.is_empty());
        assert!(pairing.expire(1_000_000).is_empty());
    }

    #[test]
    fn retransmissions_are_answered_in_order() {
        let mut pairing = Pairing::new(16, 5_000);
        pairing.insert(0, key(7, 1), DISCOVER, 1);
        pairing.insert(1_000, key(7, 1), DISCOVER, 2);
        assert_eq!(pairing.take(&key(7, 1), OFFER), Some(1));
        assert_eq!(pairing.len(), 1);
        assert_eq!(pairing.expire(5_999), Vec::<i32>::new());
        assert_eq!(pairing.expire(6_000), vec![2]);
        assert!(pairing.is_empty());
    }

    #[test]
    fn unanswered_messages_expire_and_a_full_table_pushes_the_oldest_out() {
        let mut pairing = Pairing::new(2, 5_000);
        assert_eq!(pairing.insert(0, key(1, 1), DISCOVER, 1), None);
        assert_eq!(pairing.insert(1, key(2, 1), DISCOVER, 2), None);
        assert_eq!(pairing.insert(2, key(3, 1), DISCOVER, 3), Some(1));
        assert_eq!(pairing.len(), 2);
        assert_eq!(pairing.expire(5_001), vec![2]);
        assert_eq!(pairing.expire(5_002), vec![3]);
        assert!(pairing.is_empty());
    }

    #[test]
    fn which_replies_answer_which_messages() {
        assert!(answers(None, None));
        assert!(answers(Some(8), ACK));
        assert!(!answers(Some(8), Some(6)));
        assert!(answers(REQUEST, Some(6)));
        assert!(!answers(DISCOVER, ACK));
        assert!(!answers(Some(7), ACK), "nothing answers a DHCPRELEASE");
    }
}
