//! Fixed catalogue data: server types, zones and the official images.
//!
//! The ids are fixed so that tests can name them. They are made up and do not match the
//! ids on the real API; the handles and zone names do match.

/// A server type as `GET /1.0/server_types` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerType {
    pub(crate) id: &'static str,
    pub(crate) handle: &'static str,
    pub(crate) name: &'static str,
    pub(crate) cores: u32,
    /// Memory in MB.
    pub(crate) ram: u64,
    /// Disk size in MB.
    pub(crate) disk_size: u64,
}

/// A zone as `GET /1.0/zones` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zone {
    pub(crate) id: &'static str,
    pub(crate) handle: &'static str,
}

/// An official image that is listed but has no file in `images/`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OfficialImage {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) username: &'static str,
    pub(crate) created_at: &'static str,
    /// Disk size the image describes, in bytes.
    pub(crate) virtual_size: u64,
    /// Size of the stored image, in bytes.
    pub(crate) stored_size: u64,
}

/// The account that owns the official images.
pub(crate) const OFFICIAL_OWNER: &str = "acc-brbox";

const MIB: u64 = 1024 * 1024;

pub(crate) const SERVER_TYPES: [ServerType; 5] = [
    ServerType {
        id: "typ-4m2k0",
        handle: "512mb.ssd",
        name: "512MB SSD",
        cores: 1,
        ram: 512,
        disk_size: 10_240,
    },
    ServerType {
        id: "typ-8fych",
        handle: "1gb.ssd",
        name: "1GB SSD",
        cores: 1,
        ram: 1024,
        disk_size: 25_600,
    },
    ServerType {
        id: "typ-zx45f",
        handle: "2gb.ssd",
        name: "2GB SSD",
        cores: 2,
        ram: 2048,
        disk_size: 51_200,
    },
    ServerType {
        id: "typ-wusvn",
        handle: "4gb.ssd",
        name: "4GB SSD",
        cores: 2,
        ram: 4096,
        disk_size: 81_920,
    },
    ServerType {
        id: "typ-mlbt7",
        handle: "8gb.ssd",
        name: "8GB SSD",
        cores: 4,
        ram: 8192,
        disk_size: 163_840,
    },
];

/// The type a server gets when the request names none, as the Brightbox CLI defaults to it.
pub(crate) const DEFAULT_SERVER_TYPE: &str = "1gb.ssd";

pub(crate) const ZONES: [Zone; 2] = [
    Zone {
        id: "zon-328y7",
        handle: "gb1-a",
    },
    Zone {
        id: "zon-4cq3b",
        handle: "gb1-b",
    },
];

/// The zone a server gets when the request names none.
pub(crate) const DEFAULT_ZONE: &str = "gb1-a";

pub(crate) const OFFICIAL_IMAGES: [OfficialImage; 2] = [
    OfficialImage {
        id: "img-noble",
        name: "Ubuntu Noble 24.04 server",
        description: "ID: com.ubuntu.cloud:server:24.04:amd64, Release: release",
        username: "ubuntu",
        created_at: "2024-04-25T12:00:00Z",
        virtual_size: 3584 * MIB,
        stored_size: 591 * MIB,
    },
    OfficialImage {
        id: "img-bookw",
        name: "Debian Bookworm 12 server",
        description: "Debian 12 generic cloud image",
        username: "debian",
        created_at: "2024-06-10T12:00:00Z",
        virtual_size: 2048 * MIB,
        stored_size: 402 * MIB,
    },
];

/// Finds a server type by its `typ-` id or its handle, such as `1gb.ssd`.
pub(crate) fn find_server_type(key: &str) -> Option<&'static ServerType> {
    SERVER_TYPES
        .iter()
        .find(|server_type| server_type.id == key || server_type.handle == key)
}

/// Finds a zone by its `zon-` id or its handle, such as `gb1-a`.
pub(crate) fn find_zone(key: &str) -> Option<&'static Zone> {
    ZONES
        .iter()
        .find(|zone| zone.id == key || zone.handle == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_accept_ids_and_handles() {
        assert_eq!(
            find_server_type("typ-8fych").map(|t| t.handle),
            Some("1gb.ssd")
        );
        assert_eq!(find_server_type("2gb.ssd").map(|t| t.id), Some("typ-zx45f"));
        assert_eq!(find_server_type("3gb.ssd"), None);
        assert_eq!(find_zone("gb1-b").map(|z| z.id), Some("zon-4cq3b"));
        assert_eq!(find_zone("zon-328y7").map(|z| z.handle), Some("gb1-a"));
        assert_eq!(find_zone("gb2-a"), None);
    }

    #[test]
    fn defaults_exist() {
        assert!(find_server_type(DEFAULT_SERVER_TYPE).is_some());
        assert!(find_zone(DEFAULT_ZONE).is_some());
    }

    #[test]
    fn ids_have_brightbox_shape() {
        let ids = SERVER_TYPES
            .iter()
            .map(|t| t.id)
            .chain(ZONES.iter().map(|z| z.id))
            .chain(OFFICIAL_IMAGES.iter().map(|i| i.id))
            .chain([OFFICIAL_OWNER]);
        for id in ids {
            let (prefix, rest) = id.split_once('-').unwrap_or_default();
            assert_eq!(prefix.len(), 3, "{id}");
            assert_eq!(rest.len(), 5, "{id}");
            assert!(
                rest.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
                "{id}"
            );
        }
    }
}
