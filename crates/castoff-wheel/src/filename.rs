//! The wheel file name `{distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl`,
//! as a value that round-trips through `FromStr` / `Display`.

use std::fmt;
use std::str::FromStr;

/// A parsed wheel file name. Platform tags are kept expanded; `Display` joins them with `.`
/// (the "compressed tag set" of the binary distribution format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFileName {
    /// Normalized, `-` → `_` (`my_tool`).
    pub distribution: String,
    /// Normalized PEP 440 version.
    pub version: String,
    pub build: Option<String>,
    pub python_tag: String,
    pub abi_tag: String,
    pub platform_tags: Vec<String>,
}

impl WheelFileName {
    /// `{distribution}-{version}`: the prefix of `.data` and `.dist-info` in the wheel.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.distribution, self.version)
    }

    /// The expanded tags (`py3-none-manylinux_2_17_x86_64`, …), one per `Tag:` line of WHEEL.
    pub fn tags(&self) -> Vec<String> {
        self.platform_tags
            .iter()
            .map(|platform| format!("{}-{}-{platform}", self.python_tag, self.abi_tag))
            .collect()
    }
}

impl fmt::Display for WheelFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.distribution, self.version)?;
        if let Some(build) = &self.build {
            write!(f, "-{build}")?;
        }
        write!(
            f,
            "-{}-{}-{}.whl",
            self.python_tag,
            self.abi_tag,
            self.platform_tags.join(".")
        )
    }
}

/// A string that is not a wheel file name, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a wheel file name: {reason}")]
pub struct InvalidWheelFileName {
    pub name: String,
    pub reason: &'static str,
}

impl InvalidWheelFileName {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        "wheel file names look like `greeter-0.3.1-py3-none-manylinux_2_17_x86_64.whl`"
    }
}

impl FromStr for WheelFileName {
    type Err = InvalidWheelFileName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidWheelFileName {
            name: name.to_owned(),
            reason,
        };
        let stem = name
            .strip_suffix(".whl")
            .ok_or_else(|| invalid("it does not end in `.whl`"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (distribution, version, build, python_tag, abi_tag, platform) = match parts[..] {
            [d, v, p, a, t] => (d, v, None, p, a, t),
            [d, v, b, p, a, t] => {
                if !b.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(invalid("the build tag must start with a digit"));
                }
                (d, v, Some(b.to_owned()), p, a, t)
            }
            _ => return Err(invalid("it must have 5 or 6 `-`-separated parts")),
        };
        if [distribution, version, python_tag, abi_tag, platform]
            .iter()
            .any(|part| part.is_empty())
            || platform.split('.').any(str::is_empty)
        {
            return Err(invalid("a part is empty"));
        }
        Ok(WheelFileName {
            distribution: distribution.to_owned(),
            version: version.to_owned(),
            build,
            python_tag: python_tag.to_owned(),
            abi_tag: abi_tag.to_owned(),
            platform_tags: platform.split('.').map(str::to_owned).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for name in [
            "greeter-0.3.1-py3-none-manylinux_2_34_x86_64.whl",
            "toolkit_core-2.0.0rc1-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.musllinux_1_1_x86_64.whl",
            "greeter-0.3.1-1-py3-none-win_amd64.whl",
        ] {
            let parsed: WheelFileName = name.parse().unwrap();
            assert_eq!(parsed.to_string(), name);
        }
        let parsed: WheelFileName = "a-1.0-py3-none-x.y.whl".parse().unwrap();
        assert_eq!(parsed.stem(), "a-1.0");
        assert_eq!(parsed.tags(), ["py3-none-x", "py3-none-y"]);
    }

    #[test]
    fn refusals() {
        let check = |name: &str, reason: &str| {
            let error = name.parse::<WheelFileName>().unwrap_err();
            assert_eq!(error.reason, reason, "{name}");
        };
        check("greeter-0.3.1.tar.gz", "it does not end in `.whl`");
        check(
            "greeter-0.3.1-py3-none.whl",
            "it must have 5 or 6 `-`-separated parts",
        );
        check(
            "greeter-0.3.1-x-py3-none-any.whl",
            "the build tag must start with a digit",
        );
        check("greeter--py3-none-any.whl", "a part is empty");
        check("greeter-1-py3-none-a..b.whl", "a part is empty");
    }
}
