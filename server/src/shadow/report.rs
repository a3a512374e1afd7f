//! What shadow mode found: running totals, differences by field with a few examples each (both
//! packets decoded), kept in memory, exposed as Prometheus counters, and saved to the state
//! file that `xdhcpd --shadow-report` prints.
//!
//! The state file is text, one record a line (`NAME VALUE…`, fields separated by tabs, `\t`,
//! `\n` and `\\` escaped), written to `FILE.new` and renamed over `FILE`, so a reader never sees
//! half of it. A shadow run that finds a state file continues its totals.

use std::collections::BTreeMap;
use std::path::Path;

use dhcp_compare::lists::{Entry, Key};
use dhcp_compare::replies::{describe, Difference, Reply};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::lease::record::UnixTime;

/// Examples kept per field.
pub const EXAMPLES_PER_FIELD: usize = 3;

/// One difference seen, with both replies decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub field: String,
    /// The client message: type, xid, chaddr, relay.
    pub exchange: String,
    pub isc: String,
    pub xdhcpd: String,
    pub isc_reply: String,
    pub xdhcpd_reply: String,
    pub seen: UnixTime,
}

/// Everything counted since the first shadow run that wrote the state file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub started: UnixTime,
    pub updated: UnixTime,
    /// Client messages whose two answers (or silences) were compared.
    pub compared: u64,
    /// Of those, the ones without a difference (justified ones aside).
    pub identical: u64,
    /// Client messages ISC did not answer within the pairing timeout (still compared: one
    /// server's silence against the other's reply).
    pub isc_silent: u64,
    /// Replies from ISC to no message seen (the capture started in the middle, or a message
    /// was lost).
    pub unpaired_replies: u64,
    /// Messages pushed out of a full pairing table, not compared.
    pub overflow: u64,
    /// Frames the kernel dropped before the capture read them (its buffer was full).
    pub capture_drops: u64,
    /// Differences by field (`reply`, `yiaddr`, `option 51`, …).
    pub differences: BTreeMap<String, u64>,
    /// Differences the differential tests' justified list covers, by field.
    pub justified: BTreeMap<String, u64>,
    pub examples: Vec<Example>,
}

/// The state file next to the lease file when `--shadow-state` is not given.
pub const DEFAULT_STATE_NAME: &str = "xdhcpd-shadow.state";

const HEADER: &str = "xdhcpd-shadow 1";

impl Totals {
    pub fn new(now: UnixTime) -> Self {
        Self {
            started: now,
            updated: now,
            ..Self::default()
        }
    }

    /// Counts one compared exchange: the differences of `compare_replies` for it, split into
    /// those `justified` covers (as the differential harness does) and the rest, which are
    /// returned (for the log) and kept as examples while a field has fewer than
    /// [`EXAMPLES_PER_FIELD`].
    pub fn record(
        &mut self,
        now: UnixTime,
        exchange: &str,
        differences: Vec<Difference>,
        justified: &[Entry],
        replies: (Option<&Reply>, Option<&Reply>),
    ) -> Vec<Difference> {
        self.compared += 1;
        self.updated = now;
        let (covered, remaining): (Vec<Difference>, Vec<Difference>) =
            differences.into_iter().partition(|difference| {
                justified
                    .iter()
                    .any(|entry| entry.key.covers(&difference.key))
            });
        for difference in &covered {
            *self
                .justified
                .entry(difference.key.field.clone())
                .or_default() += 1;
        }
        if remaining.is_empty() {
            self.identical += 1;
        }
        let show = |reply: Option<&Reply>| reply.map_or_else(|| "no reply".to_owned(), describe);
        for difference in &remaining {
            let field = &difference.key.field;
            *self.differences.entry(field.clone()).or_default() += 1;
            let kept = self
                .examples
                .iter()
                .filter(|example| &example.field == field)
                .count();
            if kept < EXAMPLES_PER_FIELD {
                self.examples.push(Example {
                    field: field.clone(),
                    exchange: exchange.to_owned(),
                    isc: difference.isc.clone(),
                    xdhcpd: difference.xdhcpd.clone(),
                    isc_reply: show(replies.0),
                    xdhcpd_reply: show(replies.1),
                    seen: now,
                });
            }
        }
        remaining
    }

    /// Exchanges with at least one difference that is not justified.
    pub fn differing(&self) -> u64 {
        self.compared - self.identical
    }

    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\n");
        for (name, value) in [
            ("started", u64::from(self.started)),
            ("updated", u64::from(self.updated)),
            ("compared", self.compared),
            ("identical", self.identical),
            ("isc-silent", self.isc_silent),
            ("unpaired-replies", self.unpaired_replies),
            ("overflow", self.overflow),
            ("capture-drops", self.capture_drops),
        ] {
            text.push_str(&format!("{name}\t{value}\n"));
        }
        for (kind, map) in [
            ("difference", &self.differences),
            ("justified", &self.justified),
        ] {
            for (field, count) in map {
                text.push_str(&format!("{kind}\t{}\t{count}\n", escape(field)));
            }
        }
        for example in &self.examples {
            let fields = [
                &example.field,
                &example.exchange,
                &example.isc,
                &example.xdhcpd,
                &example.isc_reply,
                &example.xdhcpd_reply,
            ];
            text.push_str("example");
            for field in fields {
                text.push('\t');
                text.push_str(&escape(field));
            }
            text.push_str(&format!("\t{}\n", example.seen));
        }
        text
    }

    pub fn from_text(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, line)| line) != Some(HEADER) {
            return Err(format!(
                "not a shadow state file (first line is not `{HEADER}`)"
            ));
        }
        let mut totals = Self::default();
        for (index, line) in lines {
            let fields: Vec<String> = line.split('\t').map(unescape).collect();
            let bad = || format!("line {}: cannot read `{line}`", index + 1);
            let number = |text: &str| text.parse::<u64>().map_err(|_| bad());
            match fields.as_slice() {
                [name, value] => {
                    let value = number(value)?;
                    let time = || UnixTime::try_from(value).map_err(|_| bad());
                    match name.as_str() {
                        "started" => totals.started = time()?,
                        "updated" => totals.updated = time()?,
                        "compared" => totals.compared = value,
                        "identical" => totals.identical = value,
                        "isc-silent" => totals.isc_silent = value,
                        "unpaired-replies" => totals.unpaired_replies = value,
                        "overflow" => totals.overflow = value,
                        "capture-drops" => totals.capture_drops = value,
                        _ => return Err(bad()),
                    }
                }
                [kind, field, count] if kind == "difference" => {
                    totals.differences.insert(field.clone(), number(count)?);
                }
                [kind, field, count] if kind == "justified" => {
                    totals.justified.insert(field.clone(), number(count)?);
                }
                [kind, field, exchange, isc, xdhcpd, isc_reply, xdhcpd_reply, seen]
                    if kind == "example" =>
                {
                    totals.examples.push(Example {
                        field: field.clone(),
                        exchange: exchange.clone(),
                        isc: isc.clone(),
                        xdhcpd: xdhcpd.clone(),
                        isc_reply: isc_reply.clone(),
                        xdhcpd_reply: xdhcpd_reply.clone(),
                        seen: UnixTime::try_from(number(seen)?).map_err(|_| bad())?,
                    });
                }
                _ => return Err(bad()),
            }
        }
        totals.identical = totals.identical.min(totals.compared);
        Ok(totals)
    }

    /// Writes the state file: `PATH.new`, then renamed over `PATH`.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut new = path.as_os_str().to_owned();
        new.push(".new");
        std::fs::write(&new, self.to_text())?;
        std::fs::rename(&new, path)
    }

    pub fn load(path: &Path) -> std::io::Result<Result<Self, String>> {
        Ok(Self::from_text(&std::fs::read_to_string(path)?))
    }

    /// The summary `xdhcpd --shadow-report` prints.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // ISC's lease-file date (`W YYYY/MM/DD HH:MM:SS`) without the weekday.
        let date = |time: UnixTime| {
            let mut out = Vec::new();
            crate::lease::file::date::write_date(time, &mut out);
            let text = String::from_utf8_lossy(&out).into_owned();
            text.split_once(' ')
                .map_or(text.clone(), |(_, date)| date.replace('/', "-"))
        };
        text.push_str(&format!(
            "xdhcpd shadow mode: replies computed beside ISC dhcpd, none sent\n\
             watched from {} to {} UTC\n\n",
            date(self.started),
            date(self.updated)
        ));
        let percent = |part: u64| {
            if self.compared == 0 {
                0.0
            } else {
                part as f64 * 100.0 / self.compared as f64
            }
        };
        text.push_str(&format!("{:>10} exchanges compared\n", self.compared));
        text.push_str(&format!(
            "{:>10} identical ({:.2} %)\n",
            self.identical,
            percent(self.identical)
        ));
        text.push_str(&format!(
            "{:>10} with differences ({:.2} %)\n",
            self.differing(),
            percent(self.differing())
        ));
        text.push_str(&format!(
            "{:>10} client messages ISC did not answer (compared as \"no reply\")\n",
            self.isc_silent
        ));
        text.push_str(&format!(
            "{:>10} ISC replies to no message seen (not compared)\n",
            self.unpaired_replies
        ));
        if self.overflow > 0 {
            text.push_str(&format!(
                "{:>10} messages not compared (pairing table full)\n",
                self.overflow
            ));
        }
        if self.capture_drops > 0 {
            text.push_str(&format!(
                "{:>10} frames lost by the capture (socket buffer full)\n",
                self.capture_drops
            ));
        }
        if !self.justified.is_empty() {
            text.push_str(
                "\nJustified differences (testdata/difftest/justified.toml, as in the differential tests):\n",
            );
            for (field, count) in &self.justified {
                text.push_str(&format!("{count:>10}  {field}\n"));
            }
        }
        if self.differences.is_empty() {
            text.push_str("\nNo differences.\n");
            return text;
        }
        text.push_str("\nDifferences by field (count), with examples:\n");
        for (field, count) in &self.differences {
            text.push_str(&format!("{count:>10}  {field}\n"));
            for example in self
                .examples
                .iter()
                .filter(|example| &example.field == field)
            {
                text.push_str(&format!(
                    "            {} ({} UTC): ISC {}, xdhcpd {}\n",
                    example.exchange,
                    date(example.seen),
                    example.isc,
                    example.xdhcpd
                ));
                text.push_str(&format!("              ISC:    {}\n", example.isc_reply));
                text.push_str(&format!("              xdhcpd: {}\n", example.xdhcpd_reply));
            }
        }
        text
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(character) = chars.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The justified differences of the differential tests that can apply to shadow mode: those
/// that hold for every config and exchange (`config = "*"`), as the harness applies them.
pub fn shadow_justified(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|entry| entry.key.config == "*" && entry.key.exchange == "*")
        .collect()
}

/// The key shadow mode gives a difference: config `shadow`, the exchange, no step.
pub fn key(exchange: &str) -> Key {
    Key {
        config: "shadow".to_owned(),
        exchange: exchange.to_owned(),
        step: "-".to_owned(),
        field: String::new(),
    }
}

/// The totals as Prometheus counters (`xdhcpd_shadow_*`), read at scrape time.
#[derive(Debug)]
pub struct ShadowCollector {
    pub totals: std::sync::Arc<std::sync::Mutex<Totals>>,
}

impl Collector for ShadowCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        use crate::metrics::collectors::counters;
        let plain = |value: u64| [(Vec::new(), value)];
        counters(
            &mut encoder,
            "shadow_compared",
            "client messages whose ISC reply and xdhcpd's computed reply were compared.",
            plain(totals.compared),
        )?;
        counters(
            &mut encoder,
            "shadow_identical",
            "compared exchanges without a difference (justified ones aside).",
            plain(totals.identical),
        )?;
        counters(
            &mut encoder,
            "shadow_differences",
            "differences between ISC's reply and xdhcpd's, by field.",
            totals
                .differences
                .iter()
                .map(|(field, count)| (vec![("field", field.clone())], *count)),
        )?;
        counters(
            &mut encoder,
            "shadow_justified_differences",
            "differences the differential tests' justified list covers, by field.",
            totals
                .justified
                .iter()
                .map(|(field, count)| (vec![("field", field.clone())], *count)),
        )?;
        counters(
            &mut encoder,
            "shadow_isc_silent",
            "client messages ISC did not answer within the pairing timeout.",
            plain(totals.isc_silent),
        )?;
        counters(
            &mut encoder,
            "shadow_unpaired_replies",
            "ISC replies to no client message seen.",
            plain(totals.unpaired_replies),
        )?;
        counters(
            &mut encoder,
            "shadow_not_compared",
            "client messages pushed out of the full pairing table.",
            plain(totals.overflow),
        )?;
        counters(
            &mut encoder,
            "shadow_capture_drops",
            "frames the kernel dropped before shadow mode read them (capture buffer full).",
            plain(totals.capture_drops),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn difference(field: &str, isc: &str, ours: &str) -> Difference {
        Difference {
            key: Key {
                field: field.to_owned(),
                ..key("DHCPDISCOVER")
            },
            isc: isc.to_owned(),
            xdhcpd: ours.to_owned(),
        }
    }

    fn justified_secs() -> Vec<Entry> {
        vec![Entry {
            key: Key {
                config: "*".to_owned(),
                exchange: "*".to_owned(),
                step: "*".to_owned(),
                field: "secs".to_owned(),
            },
            why: "RFC 2131".to_owned(),
        }]
    }

    #[test]
    fn counts_justified_differences_apart() {
        let mut totals = Totals::new(100);
        let left = totals.record(
            101,
            "x",
            vec![difference("secs", "4", "0")],
            &justified_secs(),
            (None, None),
        );
        assert!(left.is_empty());
        let left = totals.record(
            102,
            "DHCPDISCOVER xid 0x1 from 02:00:00:00:00:01",
            vec![
                difference("secs", "4", "0"),
                difference("option 51", "600", "3600"),
            ],
            &justified_secs(),
            (None, None),
        );
        assert_eq!(left.len(), 1);
        assert_eq!(
            (totals.compared, totals.identical, totals.differing()),
            (2, 1, 1)
        );
        assert_eq!(totals.justified["secs"], 2);
        assert_eq!(totals.differences["option 51"], 1);
        let text = totals.render();
        assert!(text.contains("2 exchanges compared"), "{text}");
        assert!(text.contains("option 51"), "{text}");
        assert!(text.contains("ISC 600, xdhcpd 3600"), "{text}");
    }

    #[test]
    fn keeps_a_few_examples_per_field() {
        let mut totals = Totals::new(0);
        for _ in 0..10 {
            let _ = totals.record(
                1,
                "x",
                vec![difference("yiaddr", "a", "b")],
                &[],
                (None, None),
            );
        }
        assert_eq!(totals.differences["yiaddr"], 10);
        assert_eq!(totals.examples.len(), EXAMPLES_PER_FIELD);
    }

    #[test]
    fn the_state_file_reads_back() {
        let mut totals = Totals::new(1_764_800_000);
        totals.isc_silent = 3;
        totals.capture_drops = 7;
        let _ = totals.record(
            1_764_800_100,
            "DHCPREQUEST\txid",
            vec![difference("option 15", "\"a\\b\"", "absent\nx")],
            &[],
            (None, None),
        );
        let read = Totals::from_text(&totals.to_text()).unwrap();
        assert_eq!(read, totals);
        assert!(Totals::from_text("something else\n").is_err());
        assert!(Totals::from_text("xdhcpd-shadow 1\ncompared\tmany\n").is_err());
    }

    #[test]
    fn only_justifications_for_every_config_apply() {
        let mut entries = justified_secs();
        entries.push(Entry {
            key: Key {
                config: "14-existing-leases".to_owned(),
                ..entries[0].key.clone()
            },
            why: "x".to_owned(),
        });
        assert_eq!(shadow_justified(entries).len(), 1);
    }
}
