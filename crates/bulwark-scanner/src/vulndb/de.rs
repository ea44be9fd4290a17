//! Lenient deserialisation helpers shared by the JSON and YAML feeds.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use std::fmt;

/// A string that also accepts a number or boolean in its place.
///
/// It asks the deserializer for a string, so the YAML deserializer hands
/// over a plain scalar's text as written: `1.10` stays `"1.10"` and an
/// unquoted timestamp stays its text, never a float or a date.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_string(V)
    }
}

/// Converts an optional [`Text`] into a trimmed, non-empty string.
pub(crate) fn text(t: Option<Text>) -> Option<String> {
    super::model::non_empty(t.map(|t| t.0))
}

/// A value of type `T`, or anything else (then `None`): for optional
/// sub-objects whose shape varies between feeds and is not worth failing
/// a whole record over.
#[derive(Debug, Clone)]
pub(crate) struct Maybe<T>(pub Option<T>);

impl<T> Default for Maybe<T> {
    fn default() -> Self {
        Maybe(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Maybe<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Maybe<T>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Yes(T),
            No(IgnoredAny),
        }
        Ok(match Either::<T>::deserialize(d)? {
            Either::Yes(t) => Maybe(Some(t)),
            Either::No(_) => Maybe(None),
        })
    }
}

/// A list whose elements that fail to parse as `T` are dropped.
#[derive(Debug, Clone)]
pub(crate) struct LenientVec<T>(pub Vec<T>);

impl<T> Default for LenientVec<T> {
    fn default() -> Self {
        LenientVec(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LenientVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LenientVec<T>, D::Error> {
        let items = Option::<Vec<Maybe<T>>>::deserialize(d)?;
        Ok(LenientVec(
            items
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.0)
                .collect(),
        ))
    }
}
