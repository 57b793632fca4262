//! Which release a moved tag goes back to: pure functions over what a registry lists, so the
//! choice is tested without a server.

use semver::Version;

/// The npm version a dist-tag that points at `yanked` goes back to: the highest version below
/// it that is not deprecated. `latest` never goes to a pre-release (publish never puts one
/// there); other tags may. `None`: there is none, and the tag is removed.
pub(crate) fn previous_npm<'a>(
    versions: impl IntoIterator<Item = (&'a str, bool)>,
    yanked: &Version,
    tag: &str,
) -> Option<String> {
    versions
        .into_iter()
        .filter(|(_, deprecated)| !deprecated)
        .filter_map(|(text, _)| Some((Version::parse(text).ok()?, text)))
        .filter(|(version, _)| version < yanked)
        .filter(|(version, _)| tag != "latest" || version.pre.is_empty())
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, text)| text.to_owned())
}

/// The image tag a floating tag (`latest`, `X`, `X.Y`) that points at `yanked` goes back to:
/// the highest release version tag below it that carries the floating tag, as publish derives
/// them ([`castoff_plan::version::oci_tags`]). `None`: no earlier release carries it.
pub(crate) fn previous_image(tags: &[String], yanked: &Version, floating: &str) -> Option<String> {
    tags.iter()
        .filter_map(|tag| Some((Version::parse(tag).ok()?, tag)))
        .filter(|(version, _)| version.pre.is_empty() && version.build.is_empty())
        .filter(|(version, _)| version < yanked)
        .filter(|(version, _)| {
            castoff_plan::version::oci_tags(version)
                .iter()
                .skip(1)
                .any(|tag| tag == floating)
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, tag)| tag.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn npm_goes_back_to_the_highest_earlier_version_not_deprecated() {
        let versions = [
            ("0.1.0", false),
            ("0.2.0", false),
            ("0.2.1", true),
            ("0.3.0-rc.1", false),
            ("0.3.0", false),
            ("0.4.0", false),
        ];
        assert_eq!(
            previous_npm(versions, &v("0.3.0"), "latest").as_deref(),
            Some("0.2.0"),
            "0.2.1 is deprecated, 0.3.0-rc.1 is a pre-release"
        );
        assert_eq!(
            previous_npm(versions, &v("0.3.0"), "next").as_deref(),
            Some("0.3.0-rc.1")
        );
        assert_eq!(previous_npm(versions, &v("0.1.0"), "latest"), None);
        assert_eq!(
            previous_npm([("0.1.0", true), ("0.2.0", false)], &v("0.2.0"), "latest"),
            None
        );
        // Text that is not a version is left out, not a panic.
        assert_eq!(
            previous_npm(
                [("garbage", false), ("1.0.0", false)],
                &v("2.0.0"),
                "latest"
            )
            .as_deref(),
            Some("1.0.0")
        );
    }

    #[test]
    fn images_go_back_to_the_highest_earlier_release_carrying_the_tag() {
        let tags: Vec<String> = [
            "0.2.9",
            "0.3.0",
            "0.3.1",
            "0.3",
            "latest",
            "1.0.0",
            "1.1.0",
            "1.1",
            "1",
            "2.0.0-rc.1",
            "sha256-abc",
            "0.3.2",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        assert_eq!(
            previous_image(&tags, &v("0.3.2"), "latest").as_deref(),
            Some("0.3.1")
        );
        assert_eq!(
            previous_image(&tags, &v("0.3.2"), "0.3").as_deref(),
            Some("0.3.1")
        );
        assert_eq!(
            previous_image(&tags, &v("0.3.0"), "0.3"),
            None,
            "nothing earlier in 0.3"
        );
        assert_eq!(
            previous_image(&tags, &v("1.1.0"), "1").as_deref(),
            Some("1.0.0")
        );
        assert_eq!(previous_image(&tags, &v("1.1.0"), "1.1"), None);
        assert_eq!(
            previous_image(&tags, &v("1.0.0"), "latest").as_deref(),
            Some("0.3.2")
        );
        // A pre-release never carries a floating tag, so it is never gone back to.
        assert_eq!(
            previous_image(&tags, &v("2.0.0"), "latest").as_deref(),
            Some("1.1.0")
        );
    }
}
