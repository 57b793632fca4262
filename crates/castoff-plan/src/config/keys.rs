//! Lists every configuration key the code accepts, by walking the serde types with a
//! recording deserializer, so the configuration reference can be checked against the code.

use std::cell::RefCell;

use serde::Deserialize;
use serde::de::value::Error;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{PackageConfig, WorkspaceConfig};

/// Every key as a dotted path: `workspace.targets`, `package.oci.healthcheck.cmd`,
/// `package.oci.files[].src`.
pub(crate) fn all_keys() -> Vec<String> {
    let keys = RefCell::new(Vec::new());
    WorkspaceConfig::deserialize(Recorder {
        path: "workspace",
        keys: &keys,
    })
    .expect("walking WorkspaceConfig");
    PackageConfig::deserialize(Recorder {
        path: "package",
        keys: &keys,
    })
    .expect("walking PackageConfig");
    keys.into_inner()
}

struct Recorder<'a> {
    path: &'a str,
    keys: &'a RefCell<Vec<String>>,
}

impl<'de> Deserializer<'de> for Recorder<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(serde::de::Error::custom(format!(
            "{}: the key walker does not support self-describing types",
            self.path
        )))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            path: self.path,
            fields,
            next: 0,
            keys: self.keys,
        })
    }

    /// Types with several forms (`oci.ports`) walk their table form when not human readable.
    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(OneElement {
            path: format!("{}[]", self.path),
            done: false,
            keys: self.keys,
        })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(serde::de::value::MapDeserializer::new(std::iter::empty::<(
            String,
            String,
        )>()))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u16(0)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u32(0)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i64(0)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u128 f32 f64 char bytes byte_buf unit unit_struct
        newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

struct Fields<'a> {
    path: &'a str,
    fields: &'static [&'static str],
    next: usize,
    keys: &'a RefCell<Vec<String>>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(serde::de::value::StrDeserializer::<Error>::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self.fields[self.next];
        self.next += 1;
        let path = format!("{}.{field}", self.path);
        self.keys.borrow_mut().push(path.clone());
        seed.deserialize(Recorder {
            path: &path,
            keys: self.keys,
        })
    }
}

struct OneElement<'a> {
    path: String,
    done: bool,
    keys: &'a RefCell<Vec<String>>,
}

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        seed.deserialize(Recorder {
            path: &self.path,
            keys: self.keys,
        })
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_nested_tables_and_arrays_of_tables() {
        let keys = all_keys();
        for expected in [
            "workspace.targets",
            "package.bins",
            "package.python.name",
            "package.oci.healthcheck.cmd",
            "package.oci.files[].mode",
        ] {
            assert!(
                keys.iter().any(|key| key == expected),
                "{expected} not in {keys:?}"
            );
        }
    }

    /// The configuration reference documents every key the code accepts, and nothing else:
    /// each key appears in docs/configuration.md as a heading-like `` `key` `` entry.
    #[test]
    fn configuration_reference_is_in_sync() {
        let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let doc = std::fs::read_to_string(doc_path).expect("reading docs/configuration.md");
        let documented: Vec<String> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("### `"))
            .filter_map(|rest| rest.split('`').next())
            .map(str::to_owned)
            .collect();
        let code = all_keys();
        let missing: Vec<&String> = code
            .iter()
            .filter(|key| !documented.contains(key))
            .collect();
        let stale: Vec<&String> = documented
            .iter()
            .filter(|key| !code.contains(key))
            .collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "docs/configuration.md is out of sync with the code.\n\
             keys in code but not documented (add a `### \\`key\\`` section): {missing:?}\n\
             keys documented but not in code (remove them): {stale:?}"
        );
    }
}
