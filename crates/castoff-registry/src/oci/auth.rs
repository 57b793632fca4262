//! Registry authentication: `WWW-Authenticate` challenges (quoted strings, escaped quotes,
//! commas inside quotes, several challenges per header) and token-request scopes.

use std::collections::BTreeMap;

/// One challenge: `Bearer realm="…",service="…",scope="…"` → scheme `bearer` + parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameter names lower-cased, values unquoted.
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 9110 §11.6.1).
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let chars: Vec<char> = header.chars().collect();
    let mut challenges: Vec<Challenge> = Vec::new();
    let mut at = 0;
    let is_token = |c: char| !c.is_whitespace() && !matches!(c, ',' | '=' | '"');
    while at < chars.len() {
        while at < chars.len() && (chars[at].is_whitespace() || chars[at] == ',') {
            at += 1;
        }
        let start = at;
        while at < chars.len() && is_token(chars[at]) {
            at += 1;
        }
        if start == at {
            at += 1; // stray character: skip it
            continue;
        }
        let token: String = chars[start..at].iter().collect();
        let mut look = at;
        while look < chars.len() && chars[look] == ' ' {
            look += 1;
        }
        if look < chars.len() && chars[look] == '=' {
            // `name = value`: a parameter of the current challenge.
            at = look + 1;
            while at < chars.len() && chars[at] == ' ' {
                at += 1;
            }
            let mut value = String::new();
            if at < chars.len() && chars[at] == '"' {
                at += 1;
                while at < chars.len() && chars[at] != '"' {
                    if chars[at] == '\\' && at + 1 < chars.len() {
                        at += 1;
                    }
                    value.push(chars[at]);
                    at += 1;
                }
                at += 1; // closing quote
            } else {
                while at < chars.len() && chars[at] != ',' && !chars[at].is_whitespace() {
                    value.push(chars[at]);
                    at += 1;
                }
            }
            if let Some(challenge) = challenges.last_mut() {
                challenge.params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            challenges.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    challenges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(header: &str) -> String {
        parse_www_authenticate(header)
            .iter()
            .map(|c| format!("{} {:?}\n", c.scheme, c.params))
            .collect()
    }

    #[test]
    fn challenges_of_real_registries_and_awkward_ones() {
        expect_test::expect![[r#"
            bearer {"realm": "https://auth.docker.io/token", "scope": "repository:samalba/my-app:pull,push", "service": "registry.docker.io"}
        "#]]
        .assert_eq(&render(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#));
        expect_test::expect![[r#"
            basic {"realm": "https://1.dkr.ecr.us-east-1.amazonaws.com/", "service": "ecr.amazonaws.com"}
        "#]]
        .assert_eq(&render(r#"Basic realm="https://1.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#));
        // Two challenges, spaces around `=`, an escaped quote, an unquoted value.
        expect_test::expect![[r#"
            basic {"realm": "a \"quoted\", realm"}
            bearer {"error": "invalid_token", "realm": "http://127.0.0.1:1/token", "scope": "repository:a:pull repository:b:pull"}
        "#]]
        .assert_eq(&render(r#"Basic realm = "a \"quoted\", realm", Bearer realm="http://127.0.0.1:1/token", scope="repository:a:pull repository:b:pull",error=invalid_token"#));
        assert_eq!(render(""), "");
    }
}
