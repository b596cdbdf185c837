//! Builders of TNEF streams (winmail.dat), shared by aether-formats' TNEF
//! tests and the engine's clamscan differential.

#![allow(dead_code)]

pub const MESSAGE: u8 = 1;
pub const ATTACHMENT: u8 = 2;
pub const ATTACH_DATA: u16 = 0x800f;
pub const ATTACH_TITLE: u16 = 0x8010;
pub const ATTACH_REND_DATA: u16 = 0x9002;
pub const MESSAGE_CLASS: u16 = 0x8008;
pub const TNEF_VERSION: u16 = 0x9006;

/// One attribute: level, tag, type, data.
pub type Attr<'a> = (u8, u16, u16, &'a [u8]);

/// The signature, a key, and the attributes with their checksums.
pub fn tnef(attrs: &[Attr<'_>]) -> Vec<u8> {
    let mut t = 0x223e_9f78u32.to_le_bytes().to_vec();
    t.extend_from_slice(&0x1234u16.to_le_bytes());
    for (level, tag, ty, data) in attrs {
        t.push(*level);
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&ty.to_le_bytes());
        t.extend_from_slice(&(data.len() as u32).to_le_bytes());
        t.extend_from_slice(data);
        let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        t.extend_from_slice(&sum.to_le_bytes());
    }
    t
}

/// A message as Outlook writes it: version and class, then each attachment
/// (rendering data, data, title), separated by the message-level attribute
/// `separate` puts between them when true.
pub fn message(attachments: &[(&str, &[u8])], separate: bool) -> Vec<u8> {
    let titles: Vec<Vec<u8>> = attachments
        .iter()
        .map(|(n, _)| {
            let mut t = n.as_bytes().to_vec();
            t.push(0);
            t
        })
        .collect();
    let mut attrs: Vec<Attr<'_>> = vec![
        (MESSAGE, TNEF_VERSION, 8, &[0, 0, 1, 0]),
        (MESSAGE, MESSAGE_CLASS, 7, b"IPM.Microsoft Mail.Note\0"),
    ];
    for (i, (_, data)) in attachments.iter().enumerate() {
        if separate && i > 0 {
            attrs.push((MESSAGE, 0x8004, 1, b"between\0"));
        }
        attrs.push((ATTACHMENT, ATTACH_REND_DATA, 6, &[1, 0, 0, 0, 0, 0, 0, 0]));
        attrs.push((ATTACHMENT, ATTACH_DATA, 6, data));
        attrs.push((ATTACHMENT, ATTACH_TITLE, 1, &titles[i]));
    }
    tnef(&attrs)
}
