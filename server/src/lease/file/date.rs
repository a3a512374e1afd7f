//! Dates of dhcpd.leases (docs/spec/dhcpd-conf.md §8.1): `W YYYY/MM/DD HH:MM:SS`, always UTC, with the
//! weekday written for humans and ignored on input; any year ≥ 2038 means "never".

use std::io::Write as _;

use crate::lease::record::{UnixTime, NEVER};

/// 2038-01-01 00:00:00 UTC: ISC 4.4 reads every date from this year on as "never", so the writer
/// writes such times as `never` to keep a written file readable by ISC.
pub const YEAR_2038: UnixTime = 2_145_916_800;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A broken-down UTC date as the lease file writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl CivilTime {
    /// Seconds since the epoch, `NEVER` from 2038 on (docs/spec/dhcpd-conf.md §8.1), `None` when
    /// the month is not 1-12 or the time is before 1970. `offset` is the optional trailing
    /// number, added as ISC's `parse_date_core` does. Like `parse_date_core`, the other fields
    /// are not range-checked but added up (`24:00:00` is the next midnight, `02/30` is
    /// March 2nd), so every date ISC reads reads the same here.
    pub fn to_unix(self, offset: i64) -> Option<UnixTime> {
        // Years below 1900 are years since 1900 (`parse_date_core`).
        let year = if self.year < 1900 {
            self.year + 1900
        } else {
            self.year
        };
        if !(1..=12).contains(&self.month) {
            return None;
        }
        if year >= 2038 {
            return Some(NEVER);
        }
        let days = days_from_civil(year, self.month, 1) + i64::from(self.day) - 1;
        let seconds = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            + offset;
        match u32::try_from(seconds) {
            Ok(seconds) if seconds < YEAR_2038 => Some(seconds),
            Ok(_) => Some(NEVER),
            Err(_) => None,
        }
    }
}

/// Appends `W YYYY/MM/DD HH:MM:SS` (ISC `print_time`), or `never` for [`NEVER`] and times from
/// 2038 on.
pub fn write_date(time: UnixTime, out: &mut Vec<u8>) {
    if time >= YEAR_2038 {
        out.extend_from_slice(b"never");
        return;
    }
    let days = i64::from(time / 86_400);
    let seconds = time % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (4); weekday 0 is Sunday.
    let weekday = (days + 4) % 7;
    let mut buffer = [0u8; 21];
    let fields = [
        (weekday as u32, 1usize, 0usize),
        (year as u32, 4, 2),
        (month, 2, 7),
        (day, 2, 10),
        (seconds / 3600, 2, 13),
        (seconds / 60 % 60, 2, 16),
        (seconds % 60, 2, 19),
    ];
    buffer.copy_from_slice(b"0 0000/00/00 00:00:00");
    for (value, width, at) in fields {
        let mut value = value;
        for position in (at..at + width).rev() {
            buffer[position] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    out.extend_from_slice(&buffer);
}

/// How the lease file writes times (dhcpd.conf(5) `db-time-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeFormat {
    /// `W YYYY/MM/DD HH:MM:SS;` in UTC.
    #[default]
    Utc,
    /// `epoch N; # Www Mmm DD HH:MM:SS YYYY`, the comment in the server's local time zone
    /// (`db-time-format local`).
    Local,
}

/// Appends a time and its terminating `;` as ISC's `print_time` (common/print.c) returns it for
/// `fprintf(…, "  starts %s", …)`: `never;` for [`NEVER`]; with [`TimeFormat::Utc`] the date of
/// [`write_date`] then `;`; with [`TimeFormat::Local`] `epoch N; # ` and `strftime("%a %b %d
/// %H:%M:%S %Y", localtime(N))` (ISC's `mktime(localtime(t))` is `t` again).
pub fn write_time(time: UnixTime, format: TimeFormat, out: &mut Vec<u8>) {
    match format {
        TimeFormat::Utc => {
            write_date(time, out);
            out.push(b';');
        }
        TimeFormat::Local if time == NEVER => out.extend_from_slice(b"never;"),
        TimeFormat::Local => {
            let _ = write!(out, "epoch {time}; # ");
            write_local_ctime(&local_time(time), out);
        }
    }
}

/// A broken-down local time: (weekday 0 = Sunday, year, month 1-12, day, hour, minute, second).
type LocalTime = (u32, i64, u32, u32, u32, u32, u32);

/// `time` in the process's time zone (`TZ`, /etc/localtime), as ISC's `localtime` gives it;
/// UTC when the C library cannot convert it.
fn local_time(time: UnixTime) -> LocalTime {
    let seconds = libc::time_t::from(time);
    // SAFETY: `tm` is plain data that `localtime_r` fills; both pointers are valid for the call.
    let converted = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        (!libc::localtime_r(&seconds, &mut tm).is_null()).then_some(tm)
    };
    match converted {
        Some(tm) => (
            tm.tm_wday as u32,
            i64::from(tm.tm_year) + 1900,
            (tm.tm_mon + 1) as u32,
            tm.tm_mday as u32,
            tm.tm_hour as u32,
            tm.tm_min as u32,
            tm.tm_sec as u32,
        ),
        None => {
            let days = i64::from(time / 86_400);
            let (year, month, day) = civil_from_days(days);
            let seconds = time % 86_400;
            (
                ((days + 4) % 7) as u32,
                year,
                month,
                day,
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60,
            )
        }
    }
}

/// `%a %b %d %H:%M:%S %Y` in the C locale (dhcpd sets no other).
fn write_local_ctime(
    (weekday, year, month, day, hour, minute, second): &LocalTime,
    out: &mut Vec<u8>,
) {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let _ = write!(
        out,
        "{} {} {day:02} {hour:02}:{minute:02}:{second:02} {year}",
        DAYS[*weekday as usize % 7],
        MONTHS[(*month as usize + 11) % 12],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(time: UnixTime) -> String {
        let mut out = Vec::new();
        write_date(time, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_weekday_and_utc() {
        // The first lease of docs/spec/dhcpd-conf.md §8.7.
        assert_eq!(date(1_795_836_305), "6 2026/11/28 03:25:05");
        assert_eq!(date(0), "4 1970/01/01 00:00:00");
        assert_eq!(date(1_735_689_600), "3 2025/01/01 00:00:00");
        assert_eq!(date(NEVER), "never");
        assert_eq!(date(YEAR_2038), "never");
    }

    fn time(time: UnixTime, format: TimeFormat) -> String {
        let mut out = Vec::new();
        write_time(time, format, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn local_format_writes_epoch_and_a_local_ctime_comment() {
        assert_eq!(
            time(1_795_836_305, TimeFormat::Utc),
            "6 2026/11/28 03:25:05;"
        );
        assert_eq!(time(NEVER, TimeFormat::Local), "never;");
        // The comment's hour depends on the time zone; its shape and the epoch do not.
        let text = time(1_795_836_305, TimeFormat::Local);
        let comment = text.strip_prefix("epoch 1795836305; # ").expect(&text);
        let fields: Vec<&str> = comment.split(' ').collect();
        assert_eq!(fields.len(), 5, "{comment}");
        assert!(fields[1] == "Nov", "{comment}");
        assert!(fields[3].len() == 8 && fields[4] == "2026", "{comment}");
        // ISC's strftime `%d` pads the day with a zero.
        let mut out = Vec::new();
        write_local_ctime(&(0, 2026, 3, 1, 4, 5, 6), &mut out);
        assert_eq!(out, b"Sun Mar 01 04:05:06 2026");
        let mut out = Vec::new();
        write_local_ctime(&(6, 2026, 12, 31, 23, 59, 59), &mut out);
        assert_eq!(out, b"Sat Dec 31 23:59:59 2026");
    }

    #[test]
    fn reads_back_what_it_writes() {
        for time in [0u32, 59, 951_782_400, 1_795_836_305, YEAR_2038 - 1] {
            let text = date(time);
            let (_, rest) = text.split_once(' ').unwrap();
            let (ymd, hms) = rest.split_once(' ').unwrap();
            let ymd: Vec<i64> = ymd.split('/').map(|part| part.parse().unwrap()).collect();
            let hms: Vec<u32> = hms.split(':').map(|part| part.parse().unwrap()).collect();
            let civil = CivilTime {
                year: ymd[0],
                month: ymd[1] as u32,
                day: ymd[2] as u32,
                hour: hms[0],
                minute: hms[1],
                second: hms[2],
            };
            assert_eq!(civil.to_unix(0), Some(time), "{text}");
        }
    }

    #[test]
    fn year_2038_and_later_is_never() {
        let civil = CivilTime {
            year: 2040,
            month: 1,
            day: 2,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(civil.to_unix(0), Some(NEVER));
        let bad = CivilTime { month: 13, ..civil };
        assert_eq!(bad.to_unix(0), None);
    }

    #[test]
    fn fields_out_of_range_add_up_as_in_isc() {
        // dhcpd -T 4.4.3 reads these without a word (parse_date_core checks no range).
        let midnight = CivilTime {
            year: 2025,
            month: 1,
            day: 2,
            hour: 0,
            minute: 0,
            second: 0,
        };
        let hour_24 = CivilTime {
            day: 1,
            hour: 24,
            ..midnight
        };
        assert_eq!(hour_24.to_unix(0), midnight.to_unix(0));
        let february_30 = CivilTime {
            month: 2,
            day: 30,
            ..midnight
        };
        let march_2 = CivilTime {
            month: 3,
            day: 2,
            ..midnight
        };
        assert_eq!(february_30.to_unix(0), march_2.to_unix(0));
        let second_61 = CivilTime {
            day: 1,
            hour: 23,
            minute: 59,
            second: 61,
            ..midnight
        };
        assert_eq!(second_61.to_unix(0), midnight.to_unix(1));
    }
}
