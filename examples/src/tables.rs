//! Aligned text tables in the layout of the Brightbox CLI.

use brightbox_api::{Account, Image, Server};

/// Formats rows under headers as the Brightbox CLI does: each cell padded
/// to its column's width with one space either side, the header row, a rule
/// of dashes, the rows, and a closing rule. Trailing spaces are trimmed.
///
/// Rows shorter than `headers` get empty cells; extra cells are dropped.
///
/// ```
/// let rows = vec![vec!["img-a1b2c".to_owned(), "available".to_owned()]];
/// let text = brightbox_examples::table(&["id", "status"], &rows);
/// assert_eq!(text.lines().next(), Some(" id         status"));
/// assert_eq!(text.lines().nth(2), Some(" img-a1b2c  available"));
/// ```
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let format_row = |cells: &[String]| {
        let mut line = String::new();
        for (index, width) in widths.iter().enumerate() {
            let cell = cells.get(index).map(String::as_str).unwrap_or("");
            line.push(' ');
            line.push_str(&format!("{cell:<width$}"));
            line.push(' ');
        }
        line.trim_end().to_owned()
    };
    let rule = "-".repeat(widths.iter().map(|width| width + 2).sum());

    let header_cells: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    let mut text = String::new();
    text.push_str(&format_row(&header_cells));
    text.push('\n');
    text.push_str(&rule);
    text.push('\n');
    for row in rows {
        text.push_str(&format_row(row));
        text.push('\n');
    }
    text.push_str(&rule);
    text.push('\n');
    text
}

/// Formats `fields` as the Brightbox CLI's `show` output: one `name: value`
/// line each, with the names right-aligned.
pub fn detail_view(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(&format!("{name:>width$}: {value}"));
        text.push('\n');
    }
    text
}

/// Formats images as the Brightbox CLI's `images list` table: id, owner,
/// type, created on, status, size in MB, and name with architecture.
pub fn image_table(images: &[Image]) -> String {
    let headers = [
        "id",
        "owner",
        "type",
        "created_on",
        "status",
        "size",
        "name",
    ];
    let rows: Vec<Vec<String>> = images.iter().map(image_row).collect();
    table(&headers, &rows)
}

fn image_row(image: &Image) -> Vec<String> {
    let size = image.disk_size.map(|mb| mb.to_string()).unwrap_or_default();
    let name = format!("{} ({})", image.name.as_deref().unwrap_or(""), image.arch);
    vec![
        image.id.to_string(),
        image.owner.clone().unwrap_or_default(),
        image_kind(image),
        date(image.created_at),
        image.status.to_string(),
        size,
        name,
    ]
}

/// Returns `official` for Brightbox images, otherwise the source type.
fn image_kind(image: &Image) -> String {
    if image.official {
        "official".to_owned()
    } else {
        image
            .source_type
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

fn date(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// Formats every field of an image as the Brightbox CLI's `images show` does.
pub fn image_details(image: &Image) -> String {
    let fields = [
        ("id", image.id.to_string()),
        ("name", optional(image.name.as_deref())),
        ("description", optional(image.description.as_deref())),
        ("type", image_kind(image)),
        ("owner", optional(image.owner.as_deref())),
        (
            "created_at",
            optional(image.created_at.map(|at| at.to_rfc3339())),
        ),
        ("status", image.status.to_string()),
        ("arch", image.arch.to_string()),
        ("source", optional(image.source.as_deref())),
        ("source_trigger", optional(image.source_trigger.as_deref())),
        ("username", optional(image.username.as_deref())),
        ("virtual_size", optional(image.virtual_size)),
        ("disk_size", optional(image.disk_size)),
        ("min_ram", optional(image.min_ram)),
        ("official", image.official.to_string()),
        ("public", image.public.to_string()),
        ("locked", image.locked.to_string()),
        ("compatibility_mode", image.compatibility_mode.to_string()),
        ("licence_name", optional(image.licence_name.as_deref())),
    ];
    detail_view(&fields)
}

/// Formats accounts as the Brightbox CLI's `accounts list` table; RAM
/// figures are in MB.
pub fn account_table(accounts: &[Account]) -> String {
    let headers = [
        "id",
        "status",
        "name",
        "cloud_ip_limit",
        "ram_limit",
        "ram_used",
        "ram_free",
    ];
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|account| {
            let free = account
                .ram_limit
                .zip(account.ram_used)
                .map(|(limit, used)| limit.saturating_sub(used));
            vec![
                account.id.to_string(),
                account.status.to_string(),
                optional(account.name.as_deref()),
                optional(account.cloud_ips_limit),
                optional(account.ram_limit),
                optional(account.ram_used),
                optional(free),
            ]
        })
        .collect();
    table(&headers, &rows)
}

/// Formats servers as the Brightbox CLI's `servers list` table.
pub fn server_table(servers: &[Server]) -> String {
    let headers = [
        "id",
        "status",
        "type",
        "zone",
        "created_on",
        "image_id",
        "name",
    ];
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|server| {
            vec![
                server.id.to_string(),
                server.status.to_string(),
                optional(
                    server
                        .server_type
                        .as_ref()
                        .map(|kind| kind.handle.clone().unwrap_or_else(|| kind.id.to_string())),
                ),
                optional(
                    server
                        .zone
                        .as_ref()
                        .map(|zone| zone.handle.clone().unwrap_or_else(|| zone.id.to_string())),
                ),
                date(server.created_at),
                optional(server.image.as_ref().map(|image| image.id.to_string())),
                optional(server.name.as_deref()),
            ]
        })
        .collect();
    table(&headers, &rows)
}
