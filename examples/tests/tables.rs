//! The Brightbox CLI table layouts built by the shared helpers.

use brightbox_examples::{detail_view, table};

#[test]
fn table_pads_columns_to_widest_cell() {
    let rows = vec![
        vec!["img-a1b2c".to_owned(), "available".to_owned()],
        vec!["img-x".to_owned(), "creating".to_owned()],
    ];
    let text = table(&["id", "status"], &rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], " id         status");
    assert_eq!(lines[1], "-".repeat(11 + 11));
    assert_eq!(lines[2], " img-a1b2c  available");
    assert_eq!(lines[3], " img-x      creating");
    assert_eq!(lines[4], lines[1]);
}

#[test]
fn table_fills_short_rows() {
    let rows = vec![vec!["only".to_owned()]];
    let text = table(&["first", "second"], &rows);
    assert_eq!(text.lines().nth(2), Some(" only"));
    assert_eq!(text.lines().nth(1).map(str::len), Some(7 + 8));
}

#[test]
fn table_counts_characters_not_bytes() {
    let rows = vec![vec!["café".to_owned(), "x".to_owned()]];
    let text = table(&["name", "v"], &rows);
    assert_eq!(text.lines().nth(2), Some(" café  x"));
}

#[test]
fn detail_view_right_aligns_names() {
    let text = detail_view(&[
        ("id", "acc-xxxxx".to_owned()),
        ("library_ftp_host", "ftp.example".to_owned()),
    ]);
    assert_eq!(
        text,
        "              id: acc-xxxxx\nlibrary_ftp_host: ftp.example\n"
    );
}
