//! `data:` URIs of HTML pages: each is a member holding the small MIME
//! message ClamAV's HTML normalizer writes of it (`rfc2397/` files).

mod legacy_common;

use aether_formats::FileType;
use legacy_common::{damaged, testfile, walked, walked_as};

fn message(ty: &str, data: &str) -> Vec<u8> {
    let mut m = format!("From html-normalise\nContent-type: {ty}\n");
    if ty.contains(";base64") {
        m.push_str("Content-transfer-encoding: base64\n");
    }
    m.push('\n');
    m.push_str(data);
    m.into_bytes()
}

#[test]
fn debian_clam_exe_html_gives_one_base64_message() {
    let page = testfile("clam.exe.html");
    let w = walked(FileType::Html, &page);
    assert_eq!(w.members.len(), 1, "{:?}", w.problems);
    let (name, body) = &w.members[0];
    assert_eq!(name, "rfc2397");
    let text = String::from_utf8_lossy(body);
    assert!(
        text.starts_with(
            "From html-normalise\nContent-type: application/octet-stream;base64\n\
             Content-transfer-encoding: base64\n\nTVpQAAIAAAAEAA8A"
        ),
        "{text}"
    );
}

#[test]
fn quoting_escapes_and_references_as_clamav_writes_them() {
    let page = b"<html><body>\
        <a href=\"data:Text/Plain;Base64,QUJD\">one</a>\
        <img src='data:,a%41b%4 c%zd&amp;e f'>\
        <a href=data:;x,unquoted more>three</a>\
        </body></html>";
    let w = walked(FileType::Html, page);
    let got: Vec<Vec<u8>> = w.members.into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        got,
        vec![
            // The type is lower-cased; `;base64` adds the encoding line.
            message("text/plain;base64", "QUJD"),
            // `%41` decoded; `%4 ` reads the space as a second digit (0x40)
            // and `%z` as one digit of value 0 (`%0`), both eating the
            // character, as ClamAV's escape state does; a character
            // reference dropped; a space kept inside quotes.
            message("", "aAb@c%0de f"),
            // Unquoted: the value ends at white space.
            message(";x", "unquoted"),
        ]
    );
}

#[test]
fn a_uri_cut_by_the_end_of_the_page_is_still_a_file() {
    let w = walked(FileType::Html, b"<html><a href=\"data:;base64,QUJDRE");
    assert_eq!(w.members.len(), 1);
    assert_eq!(w.members[0].1, message(";base64", "QUJDRE"));
}

#[test]
fn pages_without_data_uris_have_no_members() {
    let w = walked(
        FileType::Html,
        b"<html><a href=\"http://data:x\">data:</a></html>",
    );
    assert!(w.members.is_empty(), "{:?}", w.members);
}

#[test]
fn damaged_pages_never_panic() {
    let page = testfile("clam.exe.html");
    assert!(damaged(FileType::Html, &page, 7) > 100);
    // Many URIs: each a member, bounded work.
    let mut many = b"<html>".to_vec();
    for _ in 0..5000 {
        many.extend_from_slice(b"<img src=\"data:;base64,QUJD\">");
    }
    assert_eq!(walked_as(FileType::Html, &many).members.len(), 5000);
}

#[test]
fn text_with_an_html_tag_is_searched_as_html() {
    // Past the head that types the file: text to the type table.
    let mut text = b"plain words first. ".repeat(100);
    text.extend_from_slice(b"then <html> and <a href=\"data:;base64,QUJD\">");
    let w = walked(FileType::Text, &text);
    assert_eq!(w.members.len(), 1);
    // Without a tag the same text has no URIs: ClamAV scans it as text.
    let w = walked(
        FileType::Text,
        b"plain words and <p href=\"data:;base64,QUJD\">",
    );
    assert!(w.members.is_empty());
    // A reference can spell the value's name.
    let w = walked(FileType::Html, b"<html><a href=\"dat&#97;:;base64,QUJD\">");
    assert_eq!(w.members.len(), 1, "{:?}", w.members);
}
