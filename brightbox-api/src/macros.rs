//! Macros shared by the resource modules.

/// Defines an enum for a string field of the API whose set of values can grow.
///
/// Known values get their own variant and every other string lands in the named catch-all variant, so a value
/// added by the server later still decodes. The enum gets `as_str`, `Display`, `Serialize` and `Deserialize`
/// (both as the plain string) and a crate-private `from_api` constructor.
macro_rules! open_string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $other:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// Value this version of the crate does not know, kept exactly as the API sent it.
            $other(String),
        }

        impl $name {
            /// Returns the value as the API spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::$other(value) => value,
                }
            }

            /// Maps an API string to a known variant, or to the catch-all variant.
            pub(crate) fn from_api(value: &str) -> Self {
                match value {
                    $( $text => Self::$variant, )+
                    other => Self::$other(other.to_owned()),
                }
            }

            /// Values with their own variant, as the API spells them.
            pub const KNOWN_VALUES: &'static [&'static str] = &[$( $text ),+];
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok(Self::from_api(&value))
            }
        }
    };
}

/// Implements `From<&str>` and `From<String>` that keep unknown values in the catch-all variant.
macro_rules! lossless_from_str {
    ($name:ident) => {
        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::from_api(value)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::from_api(&value)
            }
        }
    };
}
