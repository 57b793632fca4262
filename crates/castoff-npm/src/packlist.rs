//! The order in which `npm pack` writes a package's files: npm-packlist sorts by extension, then
//! by base name (both lower-cased), then by the whole path, each compared with JavaScript's
//! `localeCompare(…, "en")`, i.e. ICU's root collation. Matching it keeps castoff's tarballs
//! byte-identical to npm's.

use std::cmp::Ordering;

/// npm-packlist's comparison of two package-relative paths (`bin/greeter`, `README.md`).
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    let (extension_a, base_a) = (extension(a).to_lowercase(), basename(a).to_lowercase());
    let (extension_b, base_b) = (extension(b).to_lowercase(), basename(b).to_lowercase());
    locale_compare(&extension_a, &extension_b)
        .then_with(|| locale_compare(&base_a, &base_b))
        .then_with(|| locale_compare(a, b))
}

/// Node's `path.posix.basename`.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Node's `path.posix.extname`: from the last `.` of the base name, unless the name starts with
/// its only dot (`.npmignore` has none).
fn extension(path: &str) -> &str {
    let base = basename(path);
    match base.rfind('.') {
        Some(0) | None => "",
        Some(index) => &base[index..],
    }
}

/// ICU root collation (what `localeCompare(…, "en")` uses) for the characters file names hold:
/// punctuation and symbols in CLDR order, then digits, then letters; letter case only breaks
/// ties, lower case first, at the first difference. Characters outside ASCII sort after letters
/// by code point, which is enough for the names castoff writes.
fn locale_compare(a: &str, b: &str) -> Ordering {
    let primary = a
        .chars()
        .map(primary_weight)
        .cmp(b.chars().map(primary_weight));
    primary.then_with(|| {
        a.chars()
            .zip(b.chars())
            .map(|(x, y)| tertiary_weight(x).cmp(&tertiary_weight(y)))
            .find(|ordering| ordering.is_ne())
            .unwrap_or(Ordering::Equal)
    })
}

/// Printable ASCII in ICU root order, case folded (from Node 20: sorting every printable
/// character with `localeCompare(…, "en")`).
const ROOT_ORDER: &str = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";

fn primary_weight(c: char) -> u32 {
    let folded = c.to_ascii_lowercase();
    match ROOT_ORDER.find(folded) {
        Some(index) => index as u32,
        None => ROOT_ORDER.len() as u32 + u32::from(c),
    }
}

fn tertiary_weight(c: char) -> u8 {
    u8::from(c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(paths: &[&str]) -> Vec<String> {
        let mut paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        paths.sort_by(|a, b| compare(a, b));
        paths
    }

    #[test]
    fn matches_npm_pack() {
        // The order `npm pack` (npm 11.19.1) wrote these files in.
        assert_eq!(
            sorted(&[
                "package.json",
                "README.md",
                "x9.js",
                "Zed.js",
                "bin/tool.js",
                "lib/index.js",
                "A.js",
                "a.b.js",
                "a-b.js",
                "a_b.js",
                "x10.js",
                "LICENSE",
            ]),
            [
                "LICENSE",
                "a_b.js",
                "a-b.js",
                "a.b.js",
                "A.js",
                "lib/index.js",
                "bin/tool.js",
                "x10.js",
                "x9.js",
                "Zed.js",
                "package.json",
                "README.md",
            ]
        );
    }

    #[test]
    fn locale_order() {
        let mut words = vec![
            "ab", "a-b", "Ab", "aB", "a", "A", "a1", "a10", "a9", "a_b", "a.b",
        ];
        words.sort_by(|a, b| locale_compare(a, b));
        // Node 20: ["a","A","a_b","a-b","a.b","a1","a10","a9","ab","aB","Ab"]
        assert_eq!(
            words,
            [
                "a", "A", "a_b", "a-b", "a.b", "a1", "a10", "a9", "ab", "aB", "Ab"
            ]
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("bin/greeter"), "");
        assert_eq!(extension("bin/greeter.exe"), ".exe");
        assert_eq!(extension(".npmignore"), "");
        assert_eq!(extension("lib/a.b.js"), ".js");
        assert_eq!(extension("v1.2/readme"), "");
    }
}
