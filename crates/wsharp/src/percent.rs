//! Percent-decoding of query strings and URL user-info.

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); a malformed escape is kept
/// as written, bytes that are not UTF-8 become U+FFFD.
pub(crate) fn decode(s: &str, plus_is_space: bool) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn escapes_plus_and_malformed_input() {
        assert_eq!(decode("Nyan%20Cat", true), "Nyan Cat");
        assert_eq!(decode("a+b", true), "a b");
        assert_eq!(decode("a+b", false), "a+b");
        assert_eq!(decode("%zz", true), "%zz");
        assert_eq!(decode("%e2%9c%93", true), "✓");
        assert_eq!(decode("%4", true), "%4");
        assert_eq!(decode("%é1", true), "%é1");
        assert_eq!(decode("p%3Ass%40w", false), "p:ss@w");
    }
}
