//! Timestamps as crew-go writes them: RFC 3339 with nanoseconds and an offset.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Timelike, Utc,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An instant with the offset it was written with, so that a crew-go
/// document round-trips without changing its meaning.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<FixedOffset>);

impl Timestamp {
    /// Go's zero `time.Time` (`0001-01-01T00:00:00Z`): crew-go's "not set".
    pub fn zero() -> Self {
        Self::from_unix_millis(-62_135_596_800_000)
    }

    /// The current instant, in UTC. Only the daemon's clock should call this;
    /// rules receive `now` as an argument.
    pub fn now() -> Self {
        Timestamp(Utc::now().fixed_offset())
    }

    /// The latest instant a timestamp holds: the last millisecond of
    /// 9999-12-30 (UTC), so that with any offset its year still has the
    /// four digits RFC 3339 allows. Later instants saturate to it: written
    /// as chrono's `+10000-…`, they could not be read back, and a stored
    /// task holding one broke the daemon's recovery.
    pub const MAX_UNIX_MILLIS: i64 = 253_402_214_399_999;

    /// The latest instant ([`Timestamp::MAX_UNIX_MILLIS`]).
    pub fn max() -> Self {
        Self::from_unix_millis(Self::MAX_UNIX_MILLIS)
    }

    /// Builds a UTC timestamp from milliseconds since the Unix epoch (at
    /// most [`Timestamp::MAX_UNIX_MILLIS`]).
    pub fn from_unix_millis(ms: i64) -> Self {
        let dt = Utc
            .timestamp_millis_opt(ms.min(Self::MAX_UNIX_MILLIS))
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        Timestamp(dt.fixed_offset())
    }

    /// Milliseconds since the Unix epoch (negative before 1970).
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Nanoseconds since the Unix epoch; instants outside the years
    /// 1677..2262 that this can hold saturate to `i64::MIN` or `i64::MAX`.
    pub fn unix_nanos(&self) -> i64 {
        self.0
            .timestamp_nanos_opt()
            .unwrap_or(if self.unix_millis() < 0 {
                i64::MIN
            } else {
                i64::MAX
            })
    }

    /// Whether this is crew-go's zero time (or anything before the epoch,
    /// which no real schedule uses).
    pub fn is_zero(&self) -> bool {
        self.unix_millis() <= Self::zero().unix_millis()
    }

    /// This instant plus a number of seconds (saturating on overflow).
    pub fn plus_seconds(&self, secs: f64) -> Self {
        let ms = (secs * 1000.0).clamp(i64::MIN as f64, i64::MAX as f64) as i64;
        self.plus_millis(ms)
    }

    /// This instant plus a number of milliseconds, saturating at
    /// [`Timestamp::max`] (and at the earliest instant chrono holds).
    pub fn plus_millis(&self, ms: i64) -> Self {
        // `Duration::milliseconds` panics on `i64::MIN`: the `try_` form.
        let sum = Duration::try_milliseconds(ms).and_then(|d| self.0.checked_add_signed(d));
        Self::saturating(sum, ms)
    }

    /// This instant plus a number of nanoseconds, saturating as
    /// [`Timestamp::plus_millis`] does.
    pub fn plus_nanos(&self, ns: i64) -> Self {
        Self::saturating(self.0.checked_add_signed(Duration::nanoseconds(ns)), ns)
    }

    /// The result of adding an amount of sign `delta`, within the instants
    /// a timestamp holds.
    fn saturating(sum: Option<DateTime<FixedOffset>>, delta: i64) -> Self {
        match sum {
            Some(t) if t.timestamp_millis() <= Self::MAX_UNIX_MILLIS => Timestamp(t),
            Some(_) => Self::max(),
            None if delta > 0 => Self::max(),
            None => Timestamp(DateTime::<Utc>::MIN_UTC.fixed_offset()),
        }
    }

    /// Seconds from `self` until `later` (negative when `later` is earlier).
    pub fn seconds_until(&self, later: &Timestamp) -> f64 {
        (later.unix_millis() - self.unix_millis()) as f64 / 1000.0
    }

    /// Parses RFC 3339 (`2023-05-01T12:00:00.123456789+02:00`).
    pub fn parse(s: &str) -> Result<Self, chrono::ParseError> {
        if let Some(t) = parse_common(s.as_bytes()) {
            return Ok(t);
        }
        DateTime::parse_from_rfc3339(s).map(Timestamp).or_else(|e| {
            // A year past 9999 as chrono writes it (`+10000-…`), which
            // earlier versions could store: the latest instant held.
            let offset_given = match s.strip_suffix('Z') {
                Some(utc) => std::borrow::Cow::Owned(format!("{utc}+00:00")),
                None => std::borrow::Cow::Borrowed(s),
            };
            match DateTime::parse_from_str(&offset_given, "%Y-%m-%dT%H:%M:%S%.f%:z") {
                Ok(t) if s.starts_with('+') && t.year() > 9999 => Ok(Self::max()),
                _ => Err(e),
            }
        })
    }

    /// Writes the RFC 3339 text into `buf` and returns it. Every record and
    /// event carries several timestamps, so the common case (four-digit
    /// year, no leap second) is written by hand: chrono's general formatter
    /// was a visible share of the daemon's time.
    fn write_rfc3339<'b>(&self, buf: &'b mut [u8; 40]) -> Option<&'b str> {
        let local = self.0.naive_local();
        let (year, nanos) = (local.year(), local.nanosecond());
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            return None;
        }
        let mut w = Digits { buf, len: 0 };
        w.num(4, year as u32);
        w.byte(b'-');
        w.num(2, local.month());
        w.byte(b'-');
        w.num(2, local.day());
        w.byte(b'T');
        w.num(2, local.hour());
        w.byte(b':');
        w.num(2, local.minute());
        w.byte(b':');
        w.num(2, local.second());
        // As chrono's `SecondsFormat::AutoSi`: 0, 3, 6 or 9 digits.
        let (digits, frac) = if nanos == 0 {
            (0, 0)
        } else if nanos.is_multiple_of(1_000_000) {
            (3, nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            (6, nanos / 1_000)
        } else {
            (9, nanos)
        };
        if digits > 0 {
            w.byte(b'.');
            w.num(digits, frac);
        }
        let offset = self.0.offset().local_minus_utc();
        if offset == 0 {
            w.byte(b'Z');
        } else {
            if !offset.unsigned_abs().is_multiple_of(60) {
                return None;
            }
            let minutes = offset.unsigned_abs() / 60;
            w.byte(if offset < 0 { b'-' } else { b'+' });
            w.num(2, minutes / 60);
            w.byte(b':');
            w.num(2, minutes % 60);
        }
        let len = w.len;
        std::str::from_utf8(&buf[..len]).ok()
    }

    /// The underlying chrono value.
    pub fn as_datetime(&self) -> &DateTime<FixedOffset> {
        &self.0
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Self::zero()
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.fixed_offset())
    }
}

/// Writes fixed-width decimal fields into a timestamp buffer.
struct Digits<'b> {
    buf: &'b mut [u8; 40],
    len: usize,
}

impl Digits<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `v` as exactly `width` digits (zero-padded; `v` must fit).
    fn num(&mut self, width: usize, mut v: u32) {
        for i in (0..width).rev() {
            self.buf[self.len + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += width;
    }
}

/// Parses the shape crew-go and Crew write, `YYYY-MM-DDTHH:MM:SS`, an
/// optional fraction of 1 to 9 digits, then `Z` or `±HH:MM`; `None` sends
/// anything else (and anything invalid) to chrono's full parser.
fn parse_common(b: &[u8]) -> Option<Timestamp> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?)?;
    let (h, m, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        let digits = end - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(&b[start..end])? * 10u32.pow((9 - digits) as u32);
        i = end;
    }
    let offset_secs = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let oh = num(&[*oh1, *oh2])?;
            let om = num(&[*om1, *om2])?;
            if om > 59 {
                return None;
            }
            let v = (oh * 3600 + om * 60) as i32;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    // Leap seconds (60) and anything unusual go to chrono.
    let time = chrono::NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?;
    if sec > 59 {
        return None;
    }
    let offset = FixedOffset::east_opt(offset_secs)?;
    let local = date.and_time(time);
    offset.from_local_datetime(&local).single().map(Timestamp)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 40];
        match self.write_rfc3339(&mut buf) {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 40];
        match self.write_rfc3339(&mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 time {s:?}: {e}")))
    }
}

// On the wire a timestamp is a plain RFC 3339 string, not the struct
// around it, so its schema is written by hand.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "RFC 3339 with up to nanoseconds and the offset it was written with; \
                 0001-01-01T00:00:00Z (Go's zero time) means not set",
            ))
            .examples(["2023-05-01T12:00:00.123456789+02:00"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_go_nanoseconds_and_offsets() {
        let t = Timestamp::parse("2023-05-01T12:00:00.123456789+02:00").unwrap();
        assert_eq!(t.to_string(), "2023-05-01T12:00:00.123456789+02:00");
        let z = Timestamp::parse("0001-01-01T00:00:00Z").unwrap();
        assert!(z.is_zero());
        assert_eq!(z, Timestamp::zero());
        assert_eq!(z.to_string(), "0001-01-01T00:00:00Z");
    }

    proptest! {
        /// The hand-written formatter and parser agree with chrono on every
        /// instant, precision and offset.
        #[test]
        fn fast_paths_match_chrono(
            secs in -62_135_596_800i64..253_402_300_799,
            nanos in prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1_000),
                0u32..1_000_000_000,
            ],
            offset_minutes in prop_oneof![
                Just(0i32),
                -1439i32..1440,
            ],
        ) {
            let utc = Utc.timestamp_opt(secs, nanos).single().unwrap();
            let Some(offset) = FixedOffset::east_opt(offset_minutes * 60) else {
                return Ok(());
            };
            let dt = utc.with_timezone(&offset);
            let expected = dt.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            let t = Timestamp(dt);
            prop_assert_eq!(t.to_string(), expected.clone());
            prop_assert_eq!(serde_json::to_string(&t).unwrap(), format!("{expected:?}"));
            let parsed = Timestamp::parse(&expected).unwrap();
            prop_assert_eq!(parsed, t);
            prop_assert_eq!(parsed.0.offset(), t.0.offset());
            prop_assert_eq!(parse_common(expected.as_bytes()), Some(t));
        }
    }

    #[test]
    fn unusual_texts_still_parse_or_fail_as_chrono_says() {
        for s in [
            "2023-05-01T12:00:00.1Z",
            "2023-05-01t12:00:00z",
            "2023-05-01 12:00:00+02:00",
            "2023-05-01T12:00:00,5Z",
            "2016-12-31T23:59:60Z",
            "2023-02-30T12:00:00Z",
            "2023-05-01T24:00:00Z",
            "2023-05-01T12:00:00.Z",
            "2023-05-01T12:00:00.1234567891Z",
            "2023-05-01T12:00:00+24:00",
            "2023-05-01T12:00:00+02:60",
            "2023-05-01T12:00:00",
            "+2023-05-01T12:00:00Z",
            "２023-05-01T12:00:00Z",
        ] {
            let ours = Timestamp::parse(s).map(|t| t.0);
            let chrono = DateTime::parse_from_rfc3339(s);
            assert_eq!(ours.is_ok(), chrono.is_ok(), "{s}");
            if let (Ok(a), Ok(b)) = (ours, chrono) {
                assert_eq!(a, b, "{s}");
                assert_eq!(a.offset(), b.offset(), "{s}");
            }
        }
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_millis(1_000);
        assert_eq!(t.plus_seconds(1.5).unix_millis(), 2_500);
        assert_eq!(t.seconds_until(&t.plus_millis(250)), 0.25);
        let far = t.plus_seconds(1e30);
        assert!(far >= t);
    }

    fn read_back_text(text: &str) -> Result<Timestamp, String> {
        serde_json::from_str::<Timestamp>(text).map_err(|e| format!("{text}: {e}"))
    }

    /// Past the year 9999 chrono writes `+10000-…`, which RFC 3339 (and so
    /// the store's reader) refuses: a backoff doubling past it made a task
    /// unreadable. Every sum stays readable.
    #[test]
    fn far_future_sums_stay_readable() {
        let t = Timestamp::from_unix_millis(1_700_000_000_000);
        let read_back = |x: Timestamp| {
            let text = serde_json::to_string(&x).unwrap();
            serde_json::from_str::<Timestamp>(&text).map_err(|e| format!("{text}: {e}"))
        };
        for far in [
            t.plus_seconds(1e12),
            t.plus_seconds(1e30),
            t.plus_millis(i64::MAX),
            t.plus_nanos(i64::MAX).plus_seconds(3e11),
            Timestamp::from_unix_millis(i64::MAX),
        ] {
            assert_eq!(far, Timestamp::max());
            assert_eq!(read_back(far), Ok(far));
        }
        // With an offset, the latest instant still has a four-digit year.
        let east = Timestamp::parse("9999-12-30T23:00:00-10:00").unwrap();
        assert_eq!(read_back(east.plus_seconds(1e6)), Ok(Timestamp::max()));
        assert!(t.plus_seconds(-1e30) < t);
        // What earlier versions wrote for such instants reads as the latest.
        let written = serde_json::to_string(&Timestamp(
            chrono::DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z").unwrap()
                + chrono::Duration::days(300_000),
        ))
        .unwrap();
        assert!(written.starts_with("\"+10"), "{written}");
        assert_eq!(read_back_text(&written), Ok(Timestamp::max()));
        assert!(Timestamp::parse("+10000-13-01T00:00:00Z").is_err());
        assert!(Timestamp::parse("10000-01-01T00:00:00Z").is_err());
    }
}
