//! Civil dates of Unix time, in UTC and the proleptic Gregorian calendar: the one conversion
//! behind ZIP timestamps, the `created` fields of images, the SBOM's timestamp, and (the other
//! way round) the HTTP dates of `Retry-After`. Howard Hinnant's day-count algorithms: exact
//! integer arithmetic, no tables, no time zone database.

/// Seconds in a day (Unix time has no leap seconds).
pub const SECONDS_PER_DAY: u64 = 86_400;

/// Days from 0000-03-01 to 1970-01-01: the algorithms count from a March 1st, so that the
/// leap day ends a year.
const EPOCH_SHIFT: i64 = 719_468;
/// Days in 400 years (one era: the Gregorian calendar repeats after it).
const DAYS_PER_ERA: i64 = 146_097;

/// Days since 1970-01-01 → (year, month 1-12, day 1-31): Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + EPOCH_SHIFT;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March (0) to February (11).
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

/// (year, month 1-12, day 1-31) → days since 1970-01-01, the inverse of [`civil_from_days`]
/// (Hinnant's `days_from_civil`). The caller range-checks the fields.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT
}

/// RFC 3339 UTC time of Unix seconds: `2024-01-31T12:00:00Z`.
pub fn rfc3339(seconds: u64) -> String {
    let second_of_day = seconds % SECONDS_PER_DAY;
    let (year, month, day) = civil_from_days((seconds / SECONDS_PER_DAY) as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(499_162_500), "1985-10-26T08:15:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn days_round_trip() {
        let check = |days: i64, expect: (i64, u32, u32)| {
            assert_eq!(civil_from_days(days), expect, "{days}");
            assert_eq!(
                days_from_civil(expect.0, expect.1, expect.2),
                days,
                "{expect:?}"
            );
        };
        check(0, (1970, 1, 1));
        check(-1, (1969, 12, 31));
        check(3_652, (1980, 1, 1));
        check(11_016, (2000, 2, 29));
        check(11_017, (2000, 3, 1));
        check(-25_509, (1900, 2, 28));
        check(-25_508, (1900, 3, 1));
        check(2_932_896, (9999, 12, 31));
        for days in -800_000..800_000 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
