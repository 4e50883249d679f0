//! Checks for remote file names and directories.

use crate::error::FtpError;

/// Maximum length of a remote file name in bytes, the common `NAME_MAX` of Unix file systems.
const MAX_NAME_BYTES: usize = 255;

/// Suffix of the temporary name an upload is written to before the rename.
const PART_SUFFIX: &str = ".part";

const ALLOWED_NAMES: &str = "use only letters, digits and `-_+.~^`, as in `debian-12-amd64.img`";

/// Checks a remote file name against the characters the image library accepts.
///
/// Allowed are ASCII letters, digits and `-_+.~^`, up to 255 bytes minus the length the
/// temporary upload name adds. `/`, `..` and control characters are rejected.
pub fn validate_remote_name(name: &str) -> Result<(), FtpError> {
    validate_name(name, MAX_NAME_BYTES - temporary_overhead())
}

/// Checks a caller-chosen temporary upload name: the characters of [`validate_remote_name`], up
/// to 255 bytes, and not equal to `final_name`.
pub(crate) fn validate_temporary_name(name: &str, final_name: &str) -> Result<(), FtpError> {
    validate_name(name, MAX_NAME_BYTES)?;
    if name == final_name {
        return Err(FtpError::InvalidRemoteName {
            name: name.to_owned(),
            reason: "the temporary name equals the remote name, so a failed upload would leave \
                     a partial file under the final name; choose another temporary name"
                .to_owned(),
        });
    }
    Ok(())
}

/// Checks the characters and the length of a remote file name against `max` bytes.
fn validate_name(name: &str, max: usize) -> Result<(), FtpError> {
    let invalid = |reason: String| FtpError::InvalidRemoteName {
        name: name.to_owned(),
        reason,
    };

    if name.is_empty() {
        return Err(invalid(format!("the name is empty; {ALLOWED_NAMES}")));
    }
    if name.contains('/') {
        return Err(invalid(format!(
            "the name contains `/`; pass the directory as `remote_dir` and {ALLOWED_NAMES}"
        )));
    }
    if name == "." || name.contains("..") {
        return Err(invalid(format!(
            "the name is `.` or contains `..`; {ALLOWED_NAMES}"
        )));
    }
    if let Some(control) = name.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "the name contains the control character {control:?}; {ALLOWED_NAMES}"
        )));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_+.~^".contains(c);
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Err(invalid(format!(
            "the name contains {bad:?}; {ALLOWED_NAMES}"
        )));
    }
    if name.len() > max {
        return Err(invalid(format!(
            "the name is {} bytes long; use at most {max} bytes",
            name.len()
        )));
    }
    Ok(())
}

/// Checks a remote directory: any path the server accepts, but no control characters, which
/// would end the FTP command line early.
pub(crate) fn validate_remote_dir(dir: &str) -> Result<(), FtpError> {
    if let Some(control) = dir.chars().find(|c| c.is_control()) {
        return Err(FtpError::InvalidRemotePath {
            path: dir.to_owned(),
            reason: format!(
                "the path contains the control character {control:?}; remove it (FTP commands \
                 end at a line break)"
            ),
        });
    }
    Ok(())
}

/// Returns the name an upload is written to before it is renamed to `name`.
pub(crate) fn temporary_name(name: &str) -> String {
    format!(".{name}{PART_SUFFIX}")
}

fn temporary_overhead() -> usize {
    1 + PART_SUFFIX.len()
}

/// Joins a remote directory and a file name with exactly one `/` between them.
///
/// An empty directory means the session's current directory.
pub(crate) fn join_remote(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_handles_slashes() {
        assert_eq!(join_remote("", "a.img"), "a.img");
        assert_eq!(join_remote("incoming", "a.img"), "incoming/a.img");
        assert_eq!(join_remote("incoming/", "a.img"), "incoming/a.img");
        assert_eq!(join_remote("/", "a.img"), "/a.img");
    }

    #[test]
    fn temporary_name_is_hidden_part_file() {
        assert_eq!(temporary_name("disk.img"), ".disk.img.part");
    }

    #[test]
    fn name_length_limit_leaves_room_for_temporary_name() {
        let longest = "a".repeat(MAX_NAME_BYTES - temporary_overhead());
        assert!(validate_remote_name(&longest).is_ok());
        assert_eq!(temporary_name(&longest).len(), MAX_NAME_BYTES);
        let too_long = format!("{longest}a");
        assert!(matches!(
            validate_remote_name(&too_long),
            Err(FtpError::InvalidRemoteName { .. })
        ));
    }

    #[test]
    fn temporary_name_rules() {
        assert!(validate_temporary_name(".disk.img.0123abcd.part", "disk.img").is_ok());
        assert!(validate_temporary_name(&"a".repeat(MAX_NAME_BYTES), "disk.img").is_ok());
        let cases = [
            ("disk.img", "equals the remote name"),
            (".disk img.part", "contains ' '"),
            ("..disk.img", "contains `..`"),
            ("in/disk.img", "contains `/`"),
            ("", "empty"),
        ];
        for (name, expected) in cases {
            match validate_temporary_name(name, "disk.img") {
                Err(FtpError::InvalidRemoteName { reason, .. }) => {
                    assert!(reason.contains(expected), "{name:?}: {reason}");
                }
                other => panic!("{name:?}: expected InvalidRemoteName, got {other:?}"),
            }
        }
        let too_long = "a".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            validate_temporary_name(&too_long, "disk.img"),
            Err(FtpError::InvalidRemoteName { .. })
        ));
    }

    #[test]
    fn remote_dir_rejects_line_breaks() {
        assert!(validate_remote_dir("incoming").is_ok());
        assert!(matches!(
            validate_remote_dir("incoming\r\nDELE x"),
            Err(FtpError::InvalidRemotePath { .. })
        ));
    }
}
