//! A JSON value that keeps its keys in the order written, rendered like
//! `JSON.stringify(value, null, 2)`: package.json is read by people, and npm's own files list
//! `name` and `version` first, not alphabetically.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn string(text: impl Into<String>) -> Json {
        Json::String(text.into())
    }

    pub(crate) fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Json {
        Json::Array(
            items
                .into_iter()
                .map(|item| Json::string(item.as_ref()))
                .collect(),
        )
    }

    /// The text, two-space indented, with a final newline (as npm writes package.json).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out, 0);
        out.push('\n');
        out
    }

    fn render_into(&self, out: &mut String, depth: usize) {
        let indent = |out: &mut String, depth: usize| {
            for _ in 0..depth {
                out.push_str("  ");
            }
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(value) => {
                let _ = write!(out, "{value}");
            }
            Json::String(text) => out.push_str(&quote(text)),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) => {
                out.push_str("[\n");
                for (index, item) in items.iter().enumerate() {
                    indent(out, depth + 1);
                    item.render_into(out, depth + 1);
                    out.push_str(if index + 1 < items.len() { ",\n" } else { "\n" });
                }
                indent(out, depth);
                out.push(']');
            }
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Object(fields) => {
                out.push_str("{\n");
                for (index, (key, value)) in fields.iter().enumerate() {
                    indent(out, depth + 1);
                    out.push_str(&quote(key));
                    out.push_str(": ");
                    value.render_into(out, depth + 1);
                    out.push_str(if index + 1 < fields.len() {
                        ",\n"
                    } else {
                        "\n"
                    });
                }
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

/// A JSON string literal (serde_json's escaping, which JSON.parse reads back exactly).
pub(crate) fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Builds an object field by field, skipping absent optional values.
#[derive(Debug, Default)]
pub(crate) struct ObjectBuilder {
    fields: Vec<(String, Json)>,
}

impl ObjectBuilder {
    pub(crate) fn field(mut self, key: &str, value: Json) -> Self {
        self.fields.push((key.to_owned(), value));
        self
    }

    pub(crate) fn optional(self, key: &str, value: Option<Json>) -> Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    pub(crate) fn build(self) -> Json {
        Json::Object(self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_json_stringify() {
        let value = ObjectBuilder::default()
            .field("name", Json::string("a\"b"))
            .field("empty", Json::Array(vec![]))
            .field("list", Json::strings(["x", "y"]))
            .field(
                "nested",
                ObjectBuilder::default()
                    .field("ok", Json::Bool(true))
                    .field("none", Json::Null)
                    .build(),
            )
            .optional("absent", None)
            .build();
        assert_eq!(
            value.render(),
            "{\n  \"name\": \"a\\\"b\",\n  \"empty\": [],\n  \"list\": [\n    \"x\",\n    \"y\"\n  ],\n  \"nested\": {\n    \"ok\": true,\n    \"none\": null\n  }\n}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&value.render()).unwrap();
        assert_eq!(parsed["name"], "a\"b");
    }
}
