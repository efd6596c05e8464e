//! The `notAfter` of an X.509 certificate (PEM or DER), read with a minimal
//! DER walk: tbsCertificate → version?, serial, signature, issuer,
//! validity{notBefore, notAfter}. Enough for expiry display and
//! refresh-ahead; nothing here verifies anything.

use std::time::SystemTime;

/// One DER element: (tag, content, rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn parse_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let full = match tag {
        // UTCTime YYMMDDHHMMSS: 50..99 → 19xx.
        0x17 if text.len() == 12 => {
            let yy: u32 = text[..2].parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 if text.len() == 14 => text.to_string(),
        _ => return None,
    };
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    humantime::parse_rfc3339(&rfc).ok()
}

/// `notAfter` of a DER certificate.
pub fn not_after_der(der: &[u8]) -> Option<SystemTime> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serial, signature, issuer
    }
    let (_, validity, _) = element(rest)?;
    let (_, _, after_not_before) = element(validity)?;
    let (tag, not_after, _) = element(after_not_before)?;
    parse_time(tag, not_after)
}

/// The earliest `notAfter` among the certificates of a PEM bundle.
pub fn not_after_pem(pem: &[u8]) -> Option<SystemTime> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).ok()?;
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|block| block.split("-----END CERTIFICATE-----").next())
        .filter_map(|b64| {
            let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(clean).ok()
        })
        .filter_map(|der| not_after_der(&der))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_a_real_certificate() {
        let pem = include_bytes!("../tests/fixtures/cert/expires-2036.pem");
        let t = not_after_pem(pem).expect("notAfter");
        assert_eq!(
            humantime::format_rfc3339(t).to_string(),
            "2036-11-23T13:25:21Z"
        );
        assert_eq!(not_after_pem(b"not a certificate"), None);
    }
}
