//! Typed ids and string enums: parsing, rejection messages and serde.

use std::collections::HashSet;

use brightbox_api::{
    AccountId, AppId, Arch, ClientId, CloudIpId, ImageId, ImageStatus, ParseIdError, ServerGroupId,
    ServerId, ServerStatus, ServerTypeId, UserId, VolumeId, VolumeStatus, ZoneId,
};

#[test]
fn image_id_parses_valid_values() {
    for value in [
        "img-3ikco",
        "img-a",
        "img-00000",
        "img-abcdefghij0123456789",
    ] {
        let id: ImageId = value.parse().unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(id.as_str(), value);
        assert_eq!(id.to_string(), value);
        assert_eq!(AsRef::<str>::as_ref(&id), value);
    }
}

#[test]
fn image_id_rejects_invalid_values() {
    for value in [
        "img-",
        "IMG-abc",
        "img-ABC12",
        "srv-abcde",
        "img3ikco",
        "img_3ikco",
        "img-3ik co",
        "img-3ikco/",
        "",
        " img-3ikco",
        "img-0123456789012345678901234567890123",
    ] {
        let error = value.parse::<ImageId>().expect_err(value);
        let message = error.to_string();
        assert_eq!(error.value(), value);
        assert_eq!(error.expected_prefix(), "img");
        assert!(message.contains(&format!("{value:?}")), "{message}");
        assert!(message.contains("img-3ikco"), "{message}");
        assert!(message.starts_with("invalid image id"), "{message}");
    }
}

#[test]
fn account_id_rejects_image_id() {
    let error = "img-3ikco".parse::<AccountId>().expect_err("wrong prefix");
    assert!(error.to_string().contains("\"acc-\""), "{error}");
    assert_eq!(error.kind(), "account id");

    let id: AccountId = "acc-43ks4".parse().expect("valid id");
    assert_eq!(id, "acc-43ks4");
}

#[test]
fn ids_round_trip_through_serde() {
    let id: ImageId = serde_json::from_str("\"img-3ikco\"").expect("valid id decodes");
    assert_eq!(
        serde_json::to_string(&id).expect("id encodes"),
        "\"img-3ikco\""
    );

    let error = serde_json::from_str::<ImageId>("\"srv-abcde\"").expect_err("wrong prefix");
    assert!(error.to_string().contains("srv-abcde"), "{error}");
}

#[test]
fn ids_hash_and_compare_by_value() {
    let ids: HashSet<ImageId> = ["img-aaaaa", "img-bbbbb", "img-aaaaa"]
        .into_iter()
        .map(|v| v.parse().expect("valid id"))
        .collect();
    assert_eq!(ids.len(), 2);
    let debug = format!("{:?}", "img-aaaaa".parse::<ImageId>().expect("valid id"));
    assert_eq!(debug, "ImageId(\"img-aaaaa\")");
}

#[test]
fn arch_from_str_accepts_known_only() {
    assert_eq!("x86_64".parse::<Arch>(), Ok(Arch::X86_64));
    assert_eq!("i686".parse::<Arch>(), Ok(Arch::I686));

    let error = "arm64".parse::<Arch>().expect_err("unknown arch");
    let message = error.to_string();
    assert_eq!(error.value(), "arm64");
    assert!(message.contains("\"arm64\""), "{message}");
    assert!(message.contains("x86_64"), "{message}");
    assert!(message.contains("i686"), "{message}");
}

#[test]
fn arch_serde_keeps_unknown_values() {
    let arch: Arch = serde_json::from_str("\"aarch64\"").expect("any string decodes");
    assert_eq!(arch, Arch::Other("aarch64".to_owned()));
    assert_eq!(
        serde_json::to_string(&arch).expect("arch encodes"),
        "\"aarch64\""
    );
    assert_eq!(
        serde_json::to_string(&Arch::X86_64).expect("arch encodes"),
        "\"x86_64\""
    );
}

#[test]
fn image_status_maps_every_known_value() {
    for value in ImageStatus::KNOWN_VALUES {
        let status = ImageStatus::from(*value);
        assert!(!matches!(status, ImageStatus::Unknown(_)), "{value}");
        assert_eq!(status.as_str(), *value);
    }
    assert_eq!(
        ImageStatus::from("pondering"),
        ImageStatus::Unknown("pondering".to_owned())
    );
    assert!(ImageStatus::Deprecated.is_usable());
    assert!(ImageStatus::Deleting.is_dead());
    assert!(!ImageStatus::Unavailable.is_dead());
}

/// Parses `valid` and `other` (an id of another kind) as `T` and checks the prefix in the rejection.
fn check_kind<T>(valid: &str, other: &str, prefix: &str)
where
    T: std::str::FromStr<Err = ParseIdError> + std::fmt::Display,
{
    let id = valid
        .parse::<T>()
        .unwrap_or_else(|e| panic!("{valid}: {e}"));
    assert_eq!(id.to_string(), valid);

    let error = other.parse::<T>().err().expect("other kind is rejected");
    assert_eq!(error.expected_prefix(), prefix);
    assert!(error.to_string().contains(other), "{error}");
}

#[test]
fn every_id_kind_checks_its_prefix() {
    check_kind::<ServerId>("srv-lv426", "vol-po5we", "srv");
    check_kind::<VolumeId>("vol-po5we", "srv-lv426", "vol");
    check_kind::<ServerTypeId>("typ-zx45f", "zon-328ds", "typ");
    check_kind::<ZoneId>("zon-328ds", "typ-zx45f", "zon");
    check_kind::<UserId>("usr-kl435", "acc-43ks4", "usr");
    check_kind::<ClientId>("cli-abc12", "app-12345", "cli");
    check_kind::<AppId>("app-12345", "cli-abc12", "app");
    check_kind::<ServerGroupId>("grp-98v4n", "srv-lv426", "grp");
    check_kind::<CloudIpId>("cip-k4a25", "img-3ikco", "cip");
}

#[test]
fn server_and_volume_status_keep_unknown_values() {
    let status: ServerStatus = serde_json::from_str("\"migrating\"").expect("decodes");
    assert_eq!(status, ServerStatus::Unknown("migrating".to_owned()));
    assert_eq!(status.as_str(), "migrating");

    let status: VolumeStatus = serde_json::from_str("\"detached\"").expect("decodes");
    assert_eq!(status, VolumeStatus::Detached);
    assert!(!status.is_dead());
    assert!(VolumeStatus::Failed.is_dead());
    assert!(ServerStatus::Deleted.is_dead());
}
