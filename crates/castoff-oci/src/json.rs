//! Canonical JSON for everything that gets a digest (configs, manifests, indexes): object keys
//! sorted by their bytes, no insignificant whitespace, so the same value always has the same
//! bytes and therefore the same digest.
//!
//! Why not rely on `serde_json::Map` ordering: it is a `BTreeMap` only while no crate in the
//! build enables serde_json's `preserve_order` feature (feature unification can turn it on
//! behind our back), and `oci-spec` uses `HashMap`s. Sorting here makes the bytes independent
//! of both.

use serde_json::Value;

/// The canonical bytes of `value`.
pub(crate) fn canonical(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(value, &mut out);
    out.into_bytes()
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::String(text) => write_string(text, out),
        // Numbers, booleans and null print the same way in every serializer.
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(text: &str, out: &mut String) {
    // serde_json's string escaping: `"`, `\`, control characters; never `\/`.
    out.push_str(&Value::String(text.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_whitespace_is_gone() {
        let value: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": true}], "a": "x\"/\u0001" }"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(canonical(&value)).unwrap(),
            r#"{"a":"x\"/\u0001","b":[1,{"a":true,"z":null}]}"#
        );
    }
}
