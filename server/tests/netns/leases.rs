//! A deliberately small, independent reader of dhcpd.leases text (ISC dhcpd.leases(5)), so the
//! tests check the server's file without trusting the server's own parser.

use std::net::Ipv4Addr;

/// One `lease A { … }` block, in file order (the file is a log: later blocks win).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub address: Ipv4Addr,
    /// `starts` as seconds since the epoch (UTC), when present.
    pub starts: Option<u64>,
    pub ends: Option<u64>,
    /// Lower-case `aa:bb:…` of `hardware ethernet …;`.
    pub mac: Option<String>,
    pub binding_state: Option<String>,
}

/// Every lease block of `text`, in order. Blocks that do not parse are skipped.
pub fn parse_lease_file(text: &str) -> Vec<LeaseRecord> {
    let mut records = Vec::new();
    let mut current: Option<LeaseRecord> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("lease ") {
            current = rest
                .trim_end_matches('{')
                .trim()
                .parse()
                .ok()
                .map(|address| LeaseRecord {
                    address,
                    starts: None,
                    ends: None,
                    mac: None,
                    binding_state: None,
                });
            continue;
        }
        let Some(record) = current.as_mut() else {
            continue;
        };
        if line == "}" {
            records.extend(current.take());
        } else if let Some(rest) = line.strip_prefix("starts ") {
            record.starts = parse_date(rest);
        } else if let Some(rest) = line.strip_prefix("ends ") {
            record.ends = parse_date(rest);
        } else if let Some(rest) = line.strip_prefix("hardware ethernet ") {
            record.mac = Some(rest.trim_end_matches(';').trim().to_ascii_lowercase());
        } else if let Some(rest) = line.strip_prefix("binding state ") {
            record.binding_state = Some(rest.trim_end_matches(';').trim().to_owned());
        }
    }
    records
}

/// Kea's memfile CSV (`address,hwaddr,client_id,valid_lifetime,expire,subnet_id,…,state,…`),
/// mapped onto the same records: `starts` = expire − valid lifetime, state 0 = active.
pub fn parse_kea_csv(text: &str) -> Vec<LeaseRecord> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let address = fields.first()?.parse().ok()?;
            let lifetime: u64 = fields.get(3)?.parse().ok()?;
            let expire: u64 = fields.get(4)?.parse().ok()?;
            let state = match *fields.get(9)? {
                "0" => "active",
                "1" => "declined",
                "2" => "expired-reclaimed",
                _ => "other",
            };
            Some(LeaseRecord {
                address,
                starts: expire.checked_sub(lifetime),
                ends: Some(expire),
                mac: Some(fields.get(1)?.to_ascii_lowercase()).filter(|mac| !mac.is_empty()),
                binding_state: Some(state.to_owned()),
            })
        })
        .collect()
}

/// `W YYYY/MM/DD HH:MM:SS;` or `epoch N; # …` → seconds since the epoch; `never` → None.
pub fn parse_date(text: &str) -> Option<u64> {
    let text = text.split(';').next()?.trim();
    if let Some(epoch) = text.strip_prefix("epoch ") {
        return epoch.trim().parse().ok();
    }
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let date = parts.next()?;
    let time = parts.next()?;
    let mut ymd = date.split('/').map(|part| part.parse::<i64>());
    let (year, month, day) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let mut hms = time.split(':').map(|part| part.parse::<i64>());
    let (hour, minute, second) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Records for `mac` in file order.
pub fn records_for<'a>(records: &'a [LeaseRecord], mac: &str) -> Vec<&'a LeaseRecord> {
    let mac = mac.to_ascii_lowercase();
    records
        .iter()
        .filter(|record| record.mac.as_deref() == Some(mac.as_str()))
        .collect()
}

/// The last record of each address (the file's current state).
pub fn current_by_address(
    records: &[LeaseRecord],
) -> std::collections::HashMap<Ipv4Addr, &LeaseRecord> {
    let mut map = std::collections::HashMap::new();
    for record in records {
        map.insert(record.address, record);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_isc_blocks() {
        let text = "lease 10.213.0.100 {\n  starts 6 2026/11/28 03:25:05;\n  ends never;\n  binding state active;\n  hardware ethernet 6A:d9:3e:ff:ef:c7;\n}\n";
        let records = parse_lease_file(text);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].address, Ipv4Addr::new(10, 213, 0, 100));
        assert_eq!(records[0].starts, Some(1_795_836_305));
        assert_eq!(records[0].ends, None);
        assert_eq!(records[0].mac.as_deref(), Some("6a:d9:3e:ff:ef:c7"));
        assert_eq!(records[0].binding_state.as_deref(), Some("active"));
    }
}
