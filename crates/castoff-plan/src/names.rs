//! Name rules of each registry: PyPI project names, Python module names, npm package names,
//! OCI repository references. Each check returns the reason a name is refused.

/// PEP 508 / PyPI project name: ASCII letters, digits, `.`, `_`, `-`, starting and ending
/// with a letter or digit.
pub fn check_pypi_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    if !edge_ok(bytes.first()) || !edge_ok(bytes.last()) {
        return Err("a PyPI name must start and end with an ASCII letter or digit".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "a PyPI name may only hold ASCII letters, digits, `.`, `_` and `-`, not `{bad}`"
        ));
    }
    Ok(())
}

/// PEP 503 normalization (`My.Tool_cli` → `my-tool-cli`), the form indexes compare.
pub fn normalize_pypi_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_separator_run = false;
    for c in name.chars() {
        if matches!(c, '.' | '_' | '-') {
            if !in_separator_run {
                normalized.push('-');
            }
            in_separator_run = true;
        } else {
            normalized.push(c.to_ascii_lowercase());
            in_separator_run = false;
        }
    }
    normalized
}

/// The distribution name as wheel file names and `.dist-info` directories spell it:
/// normalized, with `-` → `_` (`My.Tool_cli` → `my_tool_cli`).
pub fn wheel_distribution_name(name: &str) -> String {
    normalize_pypi_name(name).replace('-', "_")
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// An importable Python module name: an ASCII identifier that is not a keyword.
pub fn check_python_module(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err("a Python module name must be an ASCII identifier (letters, digits, `_`, not starting with a digit)".to_owned());
    }
    if PYTHON_KEYWORDS.contains(&name) {
        return Err(format!("`{name}` is a Python keyword"));
    }
    Ok(())
}

/// npm package name rules (validate-npm-package-name, for new packages): at most 214
/// characters, lower case, URL-safe, not starting with `.` or `_`, optionally `@scope/name`.
pub fn check_npm_name(name: &str) -> Result<(), String> {
    if name.len() > 214 {
        return Err("an npm name may be at most 214 characters long".to_owned());
    }
    let (scope, bare) = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, bare)) => (Some(scope), bare),
            None => return Err("a scoped npm name has the form `@scope/name`".to_owned()),
        },
        None => (None, name),
    };
    for part in scope.into_iter().chain([bare]) {
        if part.is_empty() {
            return Err("an npm name (and its scope) must not be empty".to_owned());
        }
        if part.starts_with('.') || part.starts_with('_') {
            return Err("an npm name must not start with `.` or `_`".to_owned());
        }
        if let Some(bad) = part.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '~'))
        }) {
            return Err(format!(
                "an npm name may only hold lower-case ASCII letters, digits, `-`, `.`, `_` and `~`, not `{bad}`"
            ));
        }
    }
    if matches!(bare, "node_modules" | "favicon.ico") {
        return Err(format!("`{bare}` is a reserved npm name"));
    }
    Ok(())
}

/// An image repository without tag or digest: `registry[:port]/path/components`. The
/// registry part is required (castoff never guesses Docker Hub); path components follow the
/// distribution spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
/// A repository as Docker reads a short name: a first component that is no registry host (no
/// `.` or `:`, not `localhost`) means Docker Hub, so `acme/greeter` is
/// `docker.io/acme/greeter` and a single name is in Docker Hub's `library/` namespace
/// (`greeter` is `docker.io/library/greeter`); `index.docker.io/…` is `docker.io/…`. Anything
/// with a scheme or credentials is left as it is, for [`check_oci_repository`] to refuse.
pub fn normalize_oci_repository(repository: &str) -> String {
    if repository.is_empty() || repository.contains("://") || repository.contains('@') {
        return repository.to_owned();
    }
    match repository.split_once('/') {
        None => format!("docker.io/library/{repository}"),
        Some(("index.docker.io", path)) => format!("docker.io/{path}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            repository.to_owned()
        }
        Some(_) => format!("docker.io/{repository}"),
    }
}

pub fn check_oci_repository(repository: &str) -> Result<(), String> {
    let host = repository.split('/').next().unwrap_or_default();
    if repository.contains("://") || host.contains('@') {
        return Err(
            "a repository is no URL and holds no credentials: give those to `castoff publish` through the environment or a credential store".to_owned(),
        );
    }
    if repository.contains('@')
        || repository
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(
            "a repository names no tag or digest; castoff derives tags from the version".to_owned(),
        );
    }
    let Some((registry, path)) = repository.split_once('/') else {
        return Err("a repository starts with its registry host, e.g. `ghcr.io/acme/greeter` or `docker.io/acme/greeter`".to_owned());
    };
    let host = registry.split_once(':').map_or(registry, |(host, _)| host);
    if !(host.contains('.') || host == "localhost" || registry.contains(':')) {
        return Err(format!(
            "`{registry}` is not a registry host; a repository starts with one, e.g. `ghcr.io/{repository}` or `docker.io/{repository}`"
        ));
    }
    if let Some((_, port)) = registry.split_once(':')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("`{port}` is not a port number"));
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(format!(
                "path component `{component}` is invalid: lower-case letters and digits, separated by `.`, `_`, `__` or dashes"
            ));
        }
    }
    if path.len() + registry.len() + 1 > 255 {
        return Err("a repository name may be at most 255 characters long".to_owned());
    }
    Ok(())
}

/// `text` with the user information of a URL or `user:password@host` reference replaced by
/// `<redacted>`, so a credential written into a registry address never reaches a message.
pub fn redact_userinfo(text: &str) -> String {
    // A scheme is letters, digits, `+`, `-`, `.`; anything else before `://` is not one.
    let start = text
        .find("://")
        .filter(|&i| {
            text[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        })
        .map_or(0, |i| i + 3);
    let authority_end = text[start..].find('/').map_or(text.len(), |i| start + i);
    match text[start..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &text[..start], &text[start + at..]),
        None => text.to_owned(),
    }
}

/// `text` (a command line, a client's output) with the user information of every
/// `scheme://user:password@host` URL in it replaced by `<redacted>`, wherever the URL starts
/// (`--index-url=https://…` included).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let authority_start = found + 3;
        let authority_len = rest[authority_start..]
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(rest.len() - authority_start);
        let authority = &rest[authority_start..authority_start + authority_len];
        out.push_str(&rest[..authority_start]);
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("<redacted>");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[authority_start + authority_len..];
    }
    out.push_str(rest);
    out
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(&bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(&bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(checker: fn(&str) -> Result<(), String>, name: &str, expect: Result<(), &str>) {
        let got = checker(name);
        match (&got, expect) {
            (Ok(()), Ok(())) => {}
            (Err(got), Err(expected)) => assert!(got.contains(expected), "{name}: {got}"),
            _ => panic!("{name}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn pypi_names() {
        check(check_pypi_name, "greeter", Ok(()));
        check(check_pypi_name, "My.Tool_cli-2", Ok(()));
        check(check_pypi_name, "-greeter", Err("start and end"));
        check(check_pypi_name, "greeter.", Err("start and end"));
        check(check_pypi_name, "gre eter", Err("not ` `"));
        check(check_pypi_name, "", Err("start and end"));
        assert_eq!(normalize_pypi_name("My.Tool__cli"), "my-tool-cli");
        assert_eq!(wheel_distribution_name("my-tool_cli"), "my_tool_cli");
    }

    #[test]
    fn python_modules() {
        check(check_python_module, "greeter", Ok(()));
        check(check_python_module, "_tool2", Ok(()));
        check(check_python_module, "2tool", Err("identifier"));
        check(check_python_module, "my-tool", Err("identifier"));
        check(check_python_module, "class", Err("keyword"));
    }

    #[test]
    fn npm_names() {
        check(check_npm_name, "greeter", Ok(()));
        check(check_npm_name, "@acme/greeter", Ok(()));
        check(check_npm_name, "Greeter", Err("lower-case"));
        check(check_npm_name, "@acme", Err("@scope/name"));
        check(check_npm_name, "_greeter", Err("must not start"));
        check(check_npm_name, "@acme/", Err("must not be empty"));
        check(check_npm_name, "node_modules", Err("reserved"));
        check(check_npm_name, &"a".repeat(215), Err("214"));
    }

    #[test]
    fn urls_in_text_lose_their_user_information() {
        assert_eq!(
            redact_urls(
                "pip install --index-url=https://u:secret@127.0.0.1:9/simple/ g==1 (see http://h/x)"
            ),
            "pip install --index-url=https://<redacted>@127.0.0.1:9/simple/ g==1 (see http://h/x)"
        );
        assert_eq!(redact_urls("a 'http://t@h' b"), "a 'http://<redacted>@h' b");
        assert_eq!(redact_urls("no url, a@b"), "no url, a@b");
        assert_eq!(redact_urls("ends in ://"), "ends in ://");
    }

    #[test]
    fn oci_repositories() {
        check(check_oci_repository, "ghcr.io/acme/greeter", Ok(()));
        check(check_oci_repository, "127.0.0.1:5000/a/b-c__d.e", Ok(()));
        check(check_oci_repository, "localhost/greeter", Ok(()));
        check(
            check_oci_repository,
            "acme/greeter",
            Err("not a registry host"),
        );
        check(
            check_oci_repository,
            "greeter",
            Err("starts with its registry host"),
        );
        // What Docker means by a short name, which the plan normalizes before checking.
        for (short, full) in [
            ("acme/greeter", "docker.io/acme/greeter"),
            ("greeter", "docker.io/library/greeter"),
            ("acme/tools/greeter", "docker.io/acme/tools/greeter"),
            ("index.docker.io/acme/greeter", "docker.io/acme/greeter"),
            ("localhost/greeter", "localhost/greeter"),
            ("127.0.0.1:5000/greeter", "127.0.0.1:5000/greeter"),
            ("ghcr.io/acme/greeter", "ghcr.io/acme/greeter"),
            (
                "https://ghcr.io/acme/greeter",
                "https://ghcr.io/acme/greeter",
            ),
        ] {
            assert_eq!(normalize_oci_repository(short), full, "{short}");
            if !full.contains("://") {
                check(check_oci_repository, full, Ok(()));
            }
        }
        check(
            check_oci_repository,
            "ghcr.io/Acme/greeter",
            Err("path component `Acme`"),
        );
        check(
            check_oci_repository,
            "ghcr.io/acme/greeter:1.0",
            Err("no tag or digest"),
        );
        check(
            check_oci_repository,
            "ghcr.io/acme/a..b",
            Err("path component"),
        );
        check(check_oci_repository, "ghcr.io:x/acme", Err("not a port"));
        check(
            check_oci_repository,
            "https://ghcr.io/acme/greeter",
            Err("holds no credentials"),
        );
        check(
            check_oci_repository,
            "user:pw@ghcr.io/acme/greeter",
            Err("holds no credentials"),
        );
        assert_eq!(
            redact_userinfo("https://user:pw@ghcr.io/a/b@sha256:0"),
            "https://<redacted>@ghcr.io/a/b@sha256:0"
        );
        assert_eq!(redact_userinfo("u:p@host:5000/a"), "<redacted>@host:5000/a");
        assert_eq!(redact_userinfo("u=er@x://a"), "<redacted>@x://a");
        assert_eq!(
            redact_userinfo("ghcr.io/a/b@sha256:0"),
            "ghcr.io/a/b@sha256:0"
        );
    }
}
