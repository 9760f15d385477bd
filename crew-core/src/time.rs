//! Timestamps as crew-go writes them: RFC 3339 with nanoseconds and an offset.

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, TimeZone, Utc};
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

    /// Builds a UTC timestamp from milliseconds since the Unix epoch.
    pub fn from_unix_millis(ms: i64) -> Self {
        let dt = Utc
            .timestamp_millis_opt(ms)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        Timestamp(dt.fixed_offset())
    }

    /// Milliseconds since the Unix epoch (negative before 1970).
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
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

    /// This instant plus a number of milliseconds (saturating on overflow).
    pub fn plus_millis(&self, ms: i64) -> Self {
        match self.0.checked_add_signed(Duration::milliseconds(ms)) {
            Some(t) => Timestamp(t),
            None => *self,
        }
    }

    /// Seconds from `self` until `later` (negative when `later` is earlier).
    pub fn seconds_until(&self, later: &Timestamp) -> f64 {
        (later.unix_millis() - self.unix_millis()) as f64 / 1000.0
    }

    /// Parses RFC 3339 (`2023-05-01T12:00:00.123456789+02:00`).
    pub fn parse(s: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s).map(Timestamp)
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

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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

    #[test]
    fn parses_go_nanoseconds_and_offsets() {
        let t = Timestamp::parse("2023-05-01T12:00:00.123456789+02:00").unwrap();
        assert_eq!(t.to_string(), "2023-05-01T12:00:00.123456789+02:00");
        let z = Timestamp::parse("0001-01-01T00:00:00Z").unwrap();
        assert!(z.is_zero());
        assert_eq!(z, Timestamp::zero());
        assert_eq!(z.to_string(), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_millis(1_000);
        assert_eq!(t.plus_seconds(1.5).unix_millis(), 2_500);
        assert_eq!(t.seconds_until(&t.plus_millis(250)), 0.25);
        let far = t.plus_seconds(1e30);
        assert!(far >= t);
    }
}
