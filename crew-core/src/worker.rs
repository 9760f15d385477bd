//! Interpreting a worker's answer (crew-go's protocol) as an attempt outcome.

use crate::dag::truncate;
use crate::object_only::ObjectOnly;
use crate::time::Timestamp;
use crate::wire::{ChildTask, WorkerResponse};
use serde_json::Value;

/// How long a rate limit pauses the workgroup when the worker does not say.
pub const DEFAULT_RATE_LIMIT_SECS: f64 = 60.0;
/// Longest pause a worker may impose (one day).
pub const MAX_WORKER_DELAY_SECS: f64 = 86_400.0;
/// How much of a body an error message quotes.
pub const QUOTED_BODY_BYTES: usize = 512;

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerOutcome {
    /// The worker succeeded.
    Success {
        /// The task's output.
        output: Value,
        /// Continuations to create with the completion.
        children: Vec<ChildTask>,
        /// Delay every child this long.
        children_delay_secs: f64,
        /// A success may still ask to pause the workgroup (crew-go did).
        workgroup_delay_secs: Option<f64>,
    },
    /// The worker (or the call) failed: one attempt is burned.
    Failure {
        /// Readable reason: status and body, decode error, timeout...
        message: String,
    },
    /// A rate limit: the workgroup pauses, no attempt is burned.
    RateLimited {
        /// How long to pause.
        delay_secs: f64,
        /// What the worker said.
        message: String,
    },
}

impl WorkerOutcome {
    /// A failure with this message.
    pub fn failure(message: impl Into<String>) -> Self {
        WorkerOutcome::Failure {
            message: message.into(),
        }
    }
}

fn clamp_delay(secs: f64) -> f64 {
    if secs.is_finite() {
        secs.clamp(0.0, MAX_WORKER_DELAY_SECS)
    } else {
        0.0
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date, in any of the
/// three forms RFC 9110 has recipients accept.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<f64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Some(clamp_delay(secs));
    }
    parse_http_date(v, now).map(|t| clamp_delay(now.seconds_until(&t)))
}

/// An HTTP date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, read as RFC
/// 2822), or the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and
/// asctime (`Sun Nov  6 08:49:37 1994`) forms. All are in GMT.
fn parse_http_date(v: &str, now: Timestamp) -> Option<Timestamp> {
    use chrono::NaiveDateTime;
    let utc = |t: NaiveDateTime| Timestamp::from_unix_millis(t.and_utc().timestamp_millis());
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(v) {
        return Some(Timestamp::from_unix_millis(t.timestamp_millis()));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(v, "%a %b %e %H:%M:%S %Y") {
        return Some(utc(t));
    }
    // RFC 850: `weekday, DD-Mon-YY HH:MM:SS GMT`. The weekday is not
    // checked (the date says when); the year is resolved below.
    let (_, rest) = v.split_once(", ")?;
    let rest = rest.strip_suffix(" GMT")?;
    let (date, time) = rest.split_once(' ')?;
    let (day_month, yy) = date.rsplit_once('-')?;
    if yy.len() != 2 || !yy.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = yy.parse().ok()?;
    // RFC 9110: a two-digit year more than 50 years in the future is the
    // most recent past year with those digits.
    let this_year = chrono::Datelike::year(now.as_datetime());
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year + 50 {
        year -= 100;
    } else if year + 100 <= this_year + 50 {
        year += 100;
    }
    let full = format!("{day_month}-{year} {time}");
    NaiveDateTime::parse_from_str(&full, "%d-%b-%Y %H:%M:%S")
        .ok()
        .map(utc)
}

/// Recorded for an `error` that says nothing (`""` or blanks): it is still a
/// failure, and an empty message would leave the operator guessing.
pub const EMPTY_ERROR_MESSAGE: &str = "the worker answered an empty error";

fn error_text(v: &Value) -> String {
    match v {
        Value::String(s) if s.trim().is_empty() => EMPTY_ERROR_MESSAGE.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        truncate(text, QUOTED_BODY_BYTES)
    }
}

/// Interprets a complete HTTP answer: status, `Retry-After`, and body.
/// Failure is a non-2xx status, an `error` that is present and not null, or
/// a body that is not the expected JSON. A 429 or a `workgroupDelayInSeconds`
/// on a failure is a rate limit.
pub fn interpret_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> WorkerOutcome {
    // A UTF-8 byte-order mark is no part of the JSON, but some platforms'
    // serializers write one.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // An object, as crew-go reads it (an array is not a response).
    let parsed: Result<WorkerResponse, _> =
        serde_json::from_slice::<ObjectOnly<WorkerResponse>>(body).map(|r| r.0);
    let ok_status = (200..300).contains(&status);
    if status == 429 {
        // "Retry now" (0, negative, a date past) would call a rate-limited
        // API again at once, for ever: read as no header.
        let from_header = retry_after
            .and_then(|v| parse_retry_after(v, now))
            .filter(|d| *d > 0.0);
        let from_body = parsed
            .as_ref()
            .ok()
            .and_then(|r| r.workgroup_delay_in_seconds)
            .map(clamp_delay)
            .filter(|d| *d > 0.0);
        let message = match &parsed {
            Ok(r) if !r.error.is_null() => format!("HTTP 429: {}", error_text(&r.error)),
            _ => format!("HTTP 429: {}", quote_body(body)),
        };
        return WorkerOutcome::RateLimited {
            delay_secs: from_header.or(from_body).unwrap_or(DEFAULT_RATE_LIMIT_SECS),
            message,
        };
    }
    let response = match parsed {
        Ok(r) => r,
        Err(e) if ok_status => {
            return WorkerOutcome::failure(format!(
                "HTTP {status}: the response is not a worker response ({e}): {}",
                quote_body(body)
            ))
        }
        Err(_) => return WorkerOutcome::failure(format!("HTTP {status}: {}", quote_body(body))),
    };
    let failed = !ok_status || !response.error.is_null();
    let wg_delay = response
        .workgroup_delay_in_seconds
        .map(clamp_delay)
        .filter(|d| *d > 0.0);
    if failed {
        let message = if response.error.is_null() {
            format!("HTTP {status}: {}", quote_body(body))
        } else if ok_status {
            truncate(&error_text(&response.error), QUOTED_BODY_BYTES * 4)
        } else {
            format!(
                "HTTP {status}: {}",
                truncate(&error_text(&response.error), QUOTED_BODY_BYTES * 4)
            )
        };
        return match wg_delay {
            Some(delay_secs) => WorkerOutcome::RateLimited {
                delay_secs,
                message,
            },
            None => WorkerOutcome::Failure { message },
        };
    }
    if let Err(e) = crate::dag::check_json_depth("the output", &response.output) {
        return WorkerOutcome::failure(format!("HTTP {status}: {e}"));
    }
    WorkerOutcome::Success {
        output: response.output,
        children: response.children.unwrap_or_default(),
        children_delay_secs: response
            .children_delay_in_seconds
            .map(clamp_delay)
            .unwrap_or(0.0),
        workgroup_delay_secs: wg_delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000)
    }

    #[test]
    fn success_with_children() {
        let o = interpret_response(
            200,
            None,
            br#"{"output":{"rows":120},"children":[{"id":"c","worker":"w"}],"childrenDelayInSeconds":5}"#,
            now(),
        );
        match o {
            WorkerOutcome::Success {
                children,
                children_delay_secs,
                workgroup_delay_secs,
                ..
            } => {
                assert_eq!(children.len(), 1);
                assert_eq!(children_delay_secs, 5.0);
                assert_eq!(workgroup_delay_secs, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_array_is_not_a_response_nor_a_child() {
        for body in [&br#"[{"rows":1}]"#[..], br#"{"children":[["c","w"]]}"#] {
            match interpret_response(200, None, body, now()) {
                WorkerOutcome::Failure { message, .. } => {
                    assert!(message.contains("expected a JSON object"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn error_field_on_200_is_failure() {
        let o = interpret_response(200, None, br#"{"error":"bad account"}"#, now());
        assert_eq!(o, WorkerOutcome::failure("bad account"));
        let o = interpret_response(200, None, br#"{"error":null,"output":1}"#, now());
        assert!(matches!(o, WorkerOutcome::Success { .. }));
    }

    #[test]
    fn an_empty_error_is_a_failure_with_a_readable_message() {
        for body in [&br#"{"error":""}"#[..], br#"{"error":"  ","output":1}"#] {
            assert_eq!(
                interpret_response(200, None, body, now()),
                WorkerOutcome::failure(EMPTY_ERROR_MESSAGE)
            );
        }
        assert_eq!(
            interpret_response(500, None, br#"{"error":""}"#, now()),
            WorkerOutcome::failure(format!("HTTP 500: {EMPTY_ERROR_MESSAGE}"))
        );
        let o = interpret_response(429, None, br#"{"error":""}"#, now());
        assert!(
            matches!(&o, WorkerOutcome::RateLimited { message, .. } if message.ends_with(EMPTY_ERROR_MESSAGE)),
            "{o:?}"
        );
    }

    #[test]
    fn a_byte_order_mark_before_the_json_is_ignored() {
        let o = interpret_response(200, None, b"\xEF\xBB\xBF{\"output\":{\"rows\":1}}", now());
        assert!(
            matches!(&o, WorkerOutcome::Success { output, .. } if output == &serde_json::json!({"rows": 1})),
            "{o:?}"
        );
        let o = interpret_response(500, None, b"\xEF\xBB\xBF{\"error\":\"boom\"}", now());
        assert_eq!(o, WorkerOutcome::failure("HTTP 500: boom"));
    }

    #[test]
    fn rate_limits() {
        let o = interpret_response(
            500,
            None,
            br#"{"error":"slow down","workgroupDelayInSeconds":900}"#,
            now(),
        );
        assert_eq!(
            o,
            WorkerOutcome::RateLimited {
                delay_secs: 900.0,
                message: "HTTP 500: slow down".into()
            }
        );
        let o = interpret_response(429, Some("7"), b"", now());
        assert!(matches!(o, WorkerOutcome::RateLimited { delay_secs, .. } if delay_secs == 7.0));
        let o = interpret_response(429, Some("Tue, 14 Nov 2023 22:13:40 GMT"), b"", now());
        assert!(
            matches!(o, WorkerOutcome::RateLimited { delay_secs, .. } if delay_secs == 20.0),
            "{o:?}"
        );
        let o = interpret_response(429, None, b"", now());
        assert!(
            matches!(o, WorkerOutcome::RateLimited { delay_secs, .. } if delay_secs == DEFAULT_RATE_LIMIT_SECS)
        );
    }

    #[test]
    fn retry_after_accepts_the_obsolete_http_date_forms() {
        // now() is 2023-11-14 22:13:20 GMT; each says 20 s later.
        for date in [
            "Tue, 14 Nov 2023 22:13:40 GMT",
            "Tuesday, 14-Nov-23 22:13:40 GMT",
            "Tue Nov 14 22:13:40 2023",
        ] {
            assert_eq!(parse_retry_after(date, now()), Some(20.0), "{date}");
        }
        let one_digit_day = Timestamp::from_unix_millis(1_699_229_357_000); // 2023-11-06 00:09:17
        assert_eq!(
            parse_retry_after("Mon Nov  6 00:09:37 2023", one_digit_day),
            Some(20.0)
        );
        // RFC 9110's own examples are in the past: no delay.
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_retry_after(date, now()), Some(0.0), "{date}");
        }
        for bad in [
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov-94",
            "soon",
        ] {
            assert_eq!(parse_retry_after(bad, now()), None, "{bad}");
        }
    }

    #[test]
    fn a_two_digit_year_more_than_50_years_ahead_is_in_the_past_century() {
        let at = |y: i32| {
            let d = parse_http_date(
                &format!("Monday, 01-Jan-{:02} 00:00:00 GMT", y % 100),
                now(),
            )
            .unwrap();
            chrono::Datelike::year(d.as_datetime())
        };
        // In 2023: up to 2073 is ahead, 74 and later is the 1900s.
        assert_eq!(at(2023), 2023);
        assert_eq!(at(2073), 2073);
        assert_eq!(at(1974), 1974);
        assert_eq!(at(1999), 1999);
        assert_eq!(at(2000), 2000);
    }

    #[test]
    fn a_retry_after_of_now_is_read_as_none() {
        // Each answered at once would call the API again at once, for ever.
        for now_value in ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            let o = interpret_response(429, Some(now_value), b"", now());
            assert!(
                matches!(o, WorkerOutcome::RateLimited { delay_secs, .. } if delay_secs == DEFAULT_RATE_LIMIT_SECS),
                "{now_value}: {o:?}"
            );
        }
        // The body's delay still counts when the header says now.
        let o = interpret_response(429, Some("0"), br#"{"workgroupDelayInSeconds":30}"#, now());
        assert!(matches!(o, WorkerOutcome::RateLimited { delay_secs, .. } if delay_secs == 30.0));
    }

    #[test]
    fn an_output_too_deep_to_read_back_is_a_failure() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let ok = format!(r#"{{"output":{}}}"#, nested(crate::dag::MAX_JSON_DEPTH));
        let o = interpret_response(200, None, ok.as_bytes(), now());
        assert!(matches!(o, WorkerOutcome::Success { .. }), "{o:?}");
        let deep = format!(r#"{{"output":{}}}"#, nested(crate::dag::MAX_JSON_DEPTH + 1));
        let WorkerOutcome::Failure { message } =
            interpret_response(200, None, deep.as_bytes(), now())
        else {
            panic!("a success")
        };
        assert!(
            message.contains("65 levels deep; the limit is 64"),
            "{message}"
        );
    }

    #[test]
    fn bad_bodies_are_readable_failures() {
        let o = interpret_response(200, None, b"<html>oops", now());
        let WorkerOutcome::Failure { message } = o else {
            panic!()
        };
        assert!(message.contains("not a worker response"), "{message}");
        let o = interpret_response(503, None, b"maintenance", now());
        assert_eq!(o, WorkerOutcome::failure("HTTP 503: maintenance"));
        let huge = vec![b'x'; 10_000];
        let WorkerOutcome::Failure { message } = interpret_response(502, None, &huge, now()) else {
            panic!()
        };
        assert!(message.len() < 600);
    }
}
