//! Time as captures carry it: [`Timestamp`], nanoseconds since the Unix epoch, and
//! [`Interval`], a length of capture time (timers, timeouts, thresholds). Base types that every
//! stage reads (frames, messages, timers, exports) and that depend on nothing.

use std::fmt;

/// A capture timestamp in nanoseconds since the Unix epoch (UTC).
///
/// `i64` nanoseconds cover the years 1678 to 2262, which includes every capture in the wild
/// (one public capture carries timestamps in 2092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    pub fn from_secs_nanos(secs: i64, nanos: i64) -> Timestamp {
        Timestamp(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(nanos),
        )
    }

    pub fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms.saturating_mul(1_000_000))
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    pub fn subsec_nanos(self) -> u32 {
        // rem_euclid of a positive divisor is always in 0..1e9, which fits in u32.
        self.0.rem_euclid(Self::NANOS_PER_SEC) as u32
    }

    /// Duration from `earlier` to `self` in seconds (negative if `earlier` is later).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e9
    }

    /// This time moved on by `d` (saturating at the ends of the range).
    pub fn saturating_add(self, d: Interval) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// The capture time from `earlier` to this one (negative if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Interval {
        Interval(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339, UTC, microsecond precision: `2026-11-22T04:21:51.123456Z`.
    pub fn to_rfc3339(self) -> String {
        let mut s = String::with_capacity(27);
        self.push_rfc3339(&mut s);
        s
    }

    /// [`Timestamp::to_rfc3339`] appended to `out`. By hand rather than through chrono, which
    /// took a thousand instructions a time, and exports write a time for every message: the
    /// civil date from the day number is Howard Hinnant's `civil_from_days`. Every `i64` of
    /// nanoseconds (years 1677 to 2262) is a valid time, always with four-digit years.
    pub fn push_rfc3339(self, out: &mut String) {
        let secs = self.secs();
        let micros = self.subsec_nanos() / 1_000;
        let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since 0000-03-01 in 400-year eras of 146,097 days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // Written into a fixed buffer, then appended at once: 27 ASCII bytes.
        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        let mut digits = |value: i64, at: usize, width: usize| {
            let mut v = value.unsigned_abs();
            for slot in buf.iter_mut().skip(at).take(width).rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        digits(year, 0, 4);
        digits(month, 5, 2);
        digits(day, 8, 2);
        digits(of_day / 3_600, 11, 2);
        digits(of_day / 60 % 60, 14, 2);
        digits(of_day % 60, 17, 2);
        digits(i64::from(micros), 20, 6);
        // Digits and the template's punctuation: always ASCII.
        if let Ok(text) = std::str::from_utf8(&buf) {
            out.push_str(text);
        }
    }
}

/// A length of capture time, in nanoseconds: the timers, timeouts and thresholds are set in it,
/// so that no field names its unit and no code converts by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Interval(i64);

impl Interval {
    pub const fn from_millis(ms: i64) -> Interval {
        Interval(ms.saturating_mul(1_000_000))
    }

    pub const fn from_nanos(nanos: i64) -> Interval {
        Interval(nanos)
    }

    pub const fn from_secs(secs: i64) -> Interval {
        Interval(secs.saturating_mul(Timestamp::NANOS_PER_SEC))
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole milliseconds (towards zero).
    pub const fn as_millis(self) -> i64 {
        self.0 / 1_000_000
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub const fn saturating_mul(self, n: i64) -> Interval {
        Interval(self.0.saturating_mul(n))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_formats_rfc3339_micros_utc() {
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123456Z");
    }

    /// The hand-written formatter agrees with chrono's RFC 3339 (microseconds, `Z`) on the
    /// ends of the range, day and year boundaries (leap days, centuries), and random times.
    #[test]
    fn rfc3339_by_hand_is_chronos() {
        let chrono = |t: Timestamp| {
            chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        let mut times = vec![i64::MIN, i64::MAX, 0, -1, 1, 999, 1_000, -1_000, -1_001];
        let day = 86_400 * Timestamp::NANOS_PER_SEC;
        for d in [
            -106_751i64,
            -25_567,
            -1,
            0,
            1,
            10_956,
            11_016,
            11_017,
            11_323,
            47_541,
            47_482,
            106_750,
        ] {
            for off in [-1, 0, 1, day / 2, day - 1] {
                times.push(d.saturating_mul(day).saturating_add(off));
            }
        }
        let mut rng = crate::synth::Rng::new(11);
        for _ in 0..200_000 {
            times.push(rng.next_u64() as i64);
            times.push(
                (rng.below(400 * 366) as i64 - 200 * 366) * day + rng.below(day as u64) as i64,
            );
        }
        for t in times {
            let t = Timestamp(t);
            assert_eq!(t.to_rfc3339(), chrono(t), "{}", t.0);
        }
    }

    #[test]
    fn timestamp_before_epoch_is_well_formed() {
        let t = Timestamp(-1);
        assert_eq!(t.secs(), -1);
        assert_eq!(t.subsec_nanos(), 999_999_999);
        assert_eq!(t.to_rfc3339(), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn intervals_convert_and_move_timestamps() {
        let t = Timestamp::from_millis(1_000);
        let d = Interval::from_millis(1_500);
        assert_eq!(t.saturating_add(d), Timestamp::from_millis(2_500));
        assert_eq!(Timestamp::from_millis(2_500).since(t), d);
        assert_eq!(
            t.since(Timestamp::from_millis(2_500)),
            Interval::from_millis(-1_500)
        );
        assert_eq!(Interval::from_secs(2).as_millis(), 2_000);
        assert_eq!(d.saturating_mul(64).as_secs_f64(), 96.0);
        assert_eq!(
            Interval::from_millis(500).saturating_mul(64).as_secs_f64(),
            32.0
        );
        assert_eq!(
            Timestamp(i64::MAX - 1).saturating_add(Interval::from_secs(i64::MAX)),
            Timestamp(i64::MAX)
        );
    }
}
