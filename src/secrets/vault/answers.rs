//! Vault's answers as its API documents them, and the fields of a secret as they arrive.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use zeroize::Zeroizing;

use crate::secrets::{SecretMap, SecretString};

#[derive(Deserialize)]
pub(super) struct AuthAnswer {
    pub(super) auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
pub(super) struct AuthBlock {
    pub(super) client_token: Zeroizing<String>,
    #[serde(default)]
    pub(super) lease_duration: u64,
    #[serde(default)]
    pub(super) renewable: bool,
}

#[derive(Deserialize)]
pub(super) struct Kv2Read {
    pub(super) data: Option<Kv2ReadData>,
}

#[derive(Deserialize)]
pub(super) struct Kv2ReadData {
    pub(super) data: Option<BTreeMap<String, Field>>,
    pub(super) metadata: Option<Kv2Meta>,
}

#[derive(Deserialize)]
pub(super) struct Kv2Meta {
    pub(super) version: u64,
    #[serde(default)]
    pub(super) created_time: String,
}

#[derive(Deserialize)]
pub(super) struct Kv2Write {
    pub(super) data: Kv2Meta,
}

#[derive(Deserialize)]
pub(super) struct Kv1Read {
    pub(super) data: Option<BTreeMap<String, Field>>,
}

#[derive(Deserialize)]
pub(super) struct ListAnswer {
    pub(super) data: ListData,
}

#[derive(Deserialize)]
pub(super) struct ListData {
    #[serde(default)]
    pub(super) keys: Vec<String>,
}

/// One field of a secret as Vault sent it: a string as is, anything else as its JSON text.
pub(super) struct Field(pub(super) SecretString);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

pub(super) struct FieldVisitor;

impl FieldVisitor {
    fn text(s: String) -> Field {
        Field(SecretString::new(s))
    }
}

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret field")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Self::text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Self::text(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field, E> {
        Ok(Self::text(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(Self::text(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(Self::text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        Ok(Self::text(serde_json::Value::from(v).to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Self::text("null".into()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Field, E> {
        Ok(Self::text("null".into()))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Self::text(v.to_string()))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Field, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Self::text(v.to_string()))
    }
}

pub(super) fn fields(data: BTreeMap<String, Field>) -> SecretMap {
    data.into_iter().map(|(k, Field(v))| (k, v)).collect()
}
