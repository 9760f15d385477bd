//! JSON objects only, where a struct is expected.
//!
//! serde's derived structs also accept a JSON array, read field by field
//! in declaration order: `["g1", "nightly"]` would create the group `g1`
//! named `nightly`, and `[]` a group with every field left at its
//! default. Nobody means that. The API and the worker protocol take
//! objects, and say so when they get something else.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A `T` that was read from a JSON object (never from an array).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData))
            .map(ObjectOnly)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// For `#[serde(deserialize_with)]` on a `Vec<T>` field: every element
/// must be an object.
pub fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<ObjectOnly<T>>::deserialize(d)?;
    Ok(items.into_iter().map(|o| o.0).collect())
}

/// [`vec`] for an `Option<Vec<T>>` field (`null` is `None`).
pub fn option_vec<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Option::<Vec<ObjectOnly<T>>>::deserialize(d)?;
    Ok(items.map(|v| v.into_iter().map(|o| o.0).collect()))
}

/// For `#[serde(deserialize_with)]` on a `Box<T>` field or variant.
pub fn boxed<'de, D, T>(d: D) -> Result<Box<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    ObjectOnly::<T>::deserialize(d).map(|o| Box::new(o.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: u32,
        #[serde(default)]
        b: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Holder {
        #[serde(default, deserialize_with = "vec")]
        items: Vec<Pair>,
        #[serde(default, deserialize_with = "option_vec")]
        maybe: Option<Vec<Pair>>,
    }

    #[test]
    fn an_object_is_read_as_the_struct() {
        let p: ObjectOnly<Pair> = serde_json::from_str(r#"{"a": 1, "b": "x"}"#).unwrap();
        assert_eq!(
            p.0,
            Pair {
                a: 1,
                b: "x".into()
            }
        );
    }

    #[test]
    fn an_array_is_refused_where_plain_serde_takes_it() {
        // What this guards against: the derived struct reads arrays.
        assert!(serde_json::from_str::<Pair>("[1]").is_ok());
        let e = serde_json::from_str::<ObjectOnly<Pair>>("[1]").unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        assert!(serde_json::from_str::<ObjectOnly<Pair>>("[]").is_err());
        assert!(serde_json::from_str::<ObjectOnly<Pair>>("7").is_err());
    }

    #[test]
    fn the_struct_s_own_checks_still_apply() {
        let e = serde_json::from_str::<ObjectOnly<Pair>>(r#"{"a": 1, "c": 2}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `c`"), "{e}");
        let e = serde_json::from_str::<ObjectOnly<Pair>>(r#"{"b": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `a`"), "{e}");
    }

    #[test]
    fn elements_of_a_list_field_must_be_objects() {
        let h: Holder = serde_json::from_str(r#"{"items": [{"a": 1}], "maybe": null}"#).unwrap();
        assert_eq!(h.items.len(), 1);
        assert_eq!(h.maybe, None);
        let h: Holder = serde_json::from_str(r#"{"maybe": [{"a": 2}]}"#).unwrap();
        assert_eq!(h.maybe.map(|v| v.len()), Some(1));
        assert!(serde_json::from_str::<Holder>(r#"{"items": [[1]]}"#).is_err());
        assert!(serde_json::from_str::<Holder>(r#"{"maybe": [[1]]}"#).is_err());
    }

    #[test]
    fn a_boxed_value_must_be_an_object() {
        let b = boxed::<_, Pair>(&mut serde_json::Deserializer::from_str(r#"{"a": 3}"#)).unwrap();
        assert_eq!(b.a, 3);
        assert!(boxed::<_, Pair>(&mut serde_json::Deserializer::from_str("[3]")).is_err());
    }
}
