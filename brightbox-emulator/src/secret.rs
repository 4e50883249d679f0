//! Random credentials and resource ids.

use rand::RngExt;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE36_LOWER: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Returns `len` random letters and digits from the thread-local CSPRNG.
pub(crate) fn random_string(len: usize) -> String {
    random_from(ALPHANUMERIC, len)
}

/// Returns a resource id such as `img-3ikco`: the prefix, a dash and five base-36 characters.
pub(crate) fn random_id(prefix: &str) -> String {
    format!("{prefix}-{}", random_from(BASE36_LOWER, 5))
}

/// Returns a request id of 32 lowercase hexadecimal digits.
pub(crate) fn random_request_id() -> String {
    random_from(b"0123456789abcdef", 32)
}

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_id_has_brightbox_shape() {
        let id = random_id("img");
        assert_eq!(id.len(), 9);
        assert!(id.starts_with("img-"));
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
            "{id}"
        );
    }

    #[test]
    fn random_string_differs_between_calls() {
        let first = random_string(24);
        assert_eq!(first.len(), 24);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(first, random_string(24));
    }
}
