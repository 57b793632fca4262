//! The retry policy shared by every client: bounded attempts, exponential backoff with jitter,
//! `Retry-After`, and which failures are worth another attempt.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use castoff_archive::date::{self, SECONDS_PER_DAY};
use reqwest::StatusCode;

/// How often and how patiently a request is repeated. Only connection failures (refused, reset,
/// timeout, broken body), 429 and 5xx are retried; any other 4xx is an answer, not an accident,
/// and repeating it would only repeat the refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each later one.
    pub initial_backoff: Duration,
    /// Upper bound of the computed backoff.
    pub max_backoff: Duration,
    /// Upper bound of a server's `Retry-After`: a registry asking for an hour is answered by
    /// giving up (the run can be resumed later) rather than by hanging.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all (tests of refusal paths, or a caller that retries itself).
    pub fn never() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `failed_attempt + 1`: the server's `Retry-After` when it sent one
    /// (capped), otherwise exponential backoff with "equal jitter" (half fixed, half random), so
    /// parallel uploads that failed together do not come back together.
    pub fn delay(&self, failed_attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_retry_after);
        }
        let exponent = failed_attempt.saturating_sub(1).min(20);
        let backoff = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let half = backoff / 2;
        let random = random_fraction();
        half + half.mul_f64(random)
    }
}

/// Statuses that mean "try again later": 408, 429 and every 5xx except 501 (not implemented
/// stays not implemented).
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// `Retry-After` as delta-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

fn parse_http_date(value: &str) -> Option<u64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT". Every field is range-checked first (a server may send
    // any digits), so the arithmetic below cannot overflow.
    let rest = value.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: u32 = parts[0].parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[1])? as u32
        + 1;
    let year: i64 = parts[2]
        .parse()
        .ok()
        .filter(|y| (1970..=9999).contains(y))?;
    let time: Vec<i64> = parts[3]
        .split(':')
        .map(|p| p.parse().ok().filter(|n| (0..=60).contains(n)))
        .collect::<Option<_>>()?;
    if time.len() != 3 || time[0] > 23 {
        return None;
    }
    let days = date::days_from_civil(year, month, day);
    let seconds = days * SECONDS_PER_DAY as i64 + time[0] * 3600 + time[1] * 60 + time[2];
    u64::try_from(seconds).ok()
}

/// A number in [0, 1) that differs between calls: `RandomState` is seeded randomly per
/// process and per instance, which is all jitter needs (no `rand` dependency).
fn random_fraction() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            let delay = policy.delay(attempt, None).as_millis();
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempt}: {delay} ms"
            );
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        // Hostile values: no overflow, no panic; the policy caps whatever comes back.
        for hostile in [
            "Sun, 06 Nov 99999999999999 08:49:37 GMT",
            "Sun, 99999999999 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 99999999999:49:37 GMT",
            "Sun, 06 Nov -5 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(hostile, now), None, "{hostile}");
        }
        let far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).unwrap();
        assert_eq!(
            RetryPolicy::default().delay(1, Some(far)),
            RetryPolicy::default().max_retry_after
        );
        let huge = parse_retry_after("18446744073709551615", now).unwrap();
        assert_eq!(
            RetryPolicy::default().delay(1, Some(huge)),
            RetryPolicy::default().max_retry_after
        );
    }

    #[test]
    fn which_statuses_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 413, 416, 501] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }
}
