//! Typed resource identifiers such as `acc-43ks4` and `img-3ikco`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum number of characters after the prefix and `-`.
///
/// Brightbox ids use about five base-36 characters; the limit only rejects values that cannot be ids.
const MAX_SUFFIX_LEN: usize = 32;

/// Error returned when a string is not a valid id of the requested kind.
///
/// The message names the rejected value and the expected form, for example
/// `invalid image id "IMG-abc": expected "img-" followed by lowercase letters and digits, e.g. "img-3ikco"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {kind} {value:?}: {problem}; expected \"{prefix}-\" followed by lowercase letters and digits, e.g. {example:?}"
)]
pub struct ParseIdError {
    kind: &'static str,
    prefix: &'static str,
    example: &'static str,
    value: String,
    problem: &'static str,
}

impl ParseIdError {
    /// Kind of id that was requested, such as `"image id"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Rejected input.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Prefix the id must start with, without the `-`, such as `"img"`.
    pub fn expected_prefix(&self) -> &'static str {
        self.prefix
    }
}

/// Checks `value` against `prefix` + `-` + 1..=32 lowercase ASCII letters or digits.
fn validate(
    value: &str,
    kind: &'static str,
    prefix: &'static str,
    example: &'static str,
) -> Result<(), ParseIdError> {
    let reject = |problem: &'static str| ParseIdError {
        kind,
        prefix,
        example,
        value: value.to_owned(),
        problem,
    };

    let suffix = value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .ok_or_else(|| reject("wrong prefix"))?;
    if suffix.is_empty() {
        return Err(reject("nothing after the prefix"));
    }
    if suffix.len() > MAX_SUFFIX_LEN {
        return Err(reject("too long"));
    }
    if !suffix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(reject("contains a character other than a-z or 0-9"));
    }
    Ok(())
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal, $example:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Prefix of every id of this kind, without the `-`.
            pub const PREFIX: &'static str = $prefix;

            /// Returns the id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the id and returns the inner string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                validate(s, $kind, $prefix, $example)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseIdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                validate(&s, $kind, $prefix, $example)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ParseIdError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// Account id: `acc-` followed by lowercase letters and digits, such as `acc-43ks4`.
    ///
    /// ```
    /// use brightbox_api::AccountId;
    ///
    /// let id: AccountId = "acc-43ks4".parse()?;
    /// assert_eq!(id.as_str(), "acc-43ks4");
    /// assert!("img-43ks4".parse::<AccountId>().is_err());
    /// # Ok::<(), brightbox_api::ParseIdError>(())
    /// ```
    AccountId,
    "acc",
    "account id",
    "acc-43ks4"
);

define_id!(
    /// Image id: `img-` followed by lowercase letters and digits, such as `img-3ikco`.
    ///
    /// ```
    /// use brightbox_api::ImageId;
    ///
    /// let id: ImageId = "img-3ikco".parse()?;
    /// assert_eq!(id.to_string(), "img-3ikco");
    /// assert!("IMG-3ikco".parse::<ImageId>().is_err());
    /// # Ok::<(), brightbox_api::ParseIdError>(())
    /// ```
    ImageId,
    "img",
    "image id",
    "img-3ikco"
);

define_id!(
    /// Server id: `srv-` followed by lowercase letters and digits, such as `srv-lv426`.
    ServerId,
    "srv",
    "server id",
    "srv-lv426"
);

define_id!(
    /// Volume id: `vol-` followed by lowercase letters and digits, such as `vol-po5we`.
    VolumeId,
    "vol",
    "volume id",
    "vol-po5we"
);

define_id!(
    /// Server type id: `typ-` followed by lowercase letters and digits, such as `typ-zx45f`.
    ///
    /// Server types also have a handle such as `1gb.ssd`; see
    /// [`ServerTypes::find_by_handle`](crate::ServerTypes::find_by_handle).
    ServerTypeId,
    "typ",
    "server type id",
    "typ-zx45f"
);

define_id!(
    /// Zone id: `zon-` followed by lowercase letters and digits, such as `zon-328ds`.
    ///
    /// Zones also have a handle such as `gb1-a`; see [`Zones::find_by_handle`](crate::Zones::find_by_handle).
    ZoneId,
    "zon",
    "zone id",
    "zon-328ds"
);

define_id!(
    /// User id: `usr-` followed by lowercase letters and digits, such as `usr-kl435`.
    UserId,
    "usr",
    "user id",
    "usr-kl435"
);

define_id!(
    /// API client id: `cli-` followed by lowercase letters and digits, such as `cli-abc12`.
    ClientId,
    "cli",
    "API client id",
    "cli-abc12"
);

define_id!(
    /// OAuth application id: `app-` followed by lowercase letters and digits, such as `app-12345`.
    AppId,
    "app",
    "application id",
    "app-12345"
);

define_id!(
    /// Server group id: `grp-` followed by lowercase letters and digits, such as `grp-98v4n`.
    ServerGroupId,
    "grp",
    "server group id",
    "grp-98v4n"
);

define_id!(
    /// Cloud IP id: `cip-` followed by lowercase letters and digits, such as `cip-k4a25`.
    CloudIpId,
    "cip",
    "cloud IP id",
    "cip-k4a25"
);
