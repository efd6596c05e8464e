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
    // Digits only: the slicing below must not split a multi-byte character.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
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

/// Builds DER certificates for tests: only the fields this module walks
/// are meaningful, the rest is filler of the requested sizes.
#[cfg(test)]
pub(crate) mod testcert {
    use std::time::SystemTime;

    /// A DER element with a definite length (short or long form).
    pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// UTCTime (years 1950–2049) or GeneralizedTime of `t`.
    pub fn time(t: SystemTime, generalized: bool) -> Vec<u8> {
        let rfc = humantime::format_rfc3339_seconds(t).to_string();
        let digits: String = rfc.chars().filter(char::is_ascii_digit).collect();
        if generalized {
            der(0x18, format!("{digits}Z").as_bytes())
        } else {
            der(0x17, format!("{}Z", &digits[2..]).as_bytes())
        }
    }

    /// A certificate whose validity ends with the encoded time `not_after`;
    /// `filler` sizes the serial, algorithm and issuer (long lengths
    /// included).
    pub fn certificate(not_after: &[u8], versioned: bool, filler: usize) -> Vec<u8> {
        let mut tbs = Vec::new();
        if versioned {
            tbs.extend(der(0xa0, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &vec![0x11; 1 + filler % 20]));
        tbs.extend(der(0x30, &der(0x06, &vec![0x2a; 1 + filler % 9])));
        tbs.extend(der(0x30, &vec![0x31; filler]));
        let not_before = time(SystemTime::UNIX_EPOCH, true);
        tbs.extend(der(0x30, &[not_before, not_after.to_vec()].concat()));
        tbs.extend(der(0x30, &vec![0x55; filler / 2]));
        let cert = [
            der(0x30, &tbs),
            der(0x30, &der(0x06, &[0x2a, 0x86])),
            der(0x03, &vec![0; 1 + filler]),
        ]
        .concat();
        der(0x30, &cert)
    }

    /// PEM armour around DER bytes.
    pub fn pem(der: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::{testcert::*, *};

    /// Whole seconds from 1970 to 2049 (UTCTime's range after 1970).
    fn utc_time() -> impl Strategy<Value = SystemTime> {
        (0u64..2_524_608_000).prop_map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    }

    /// Whole seconds from 1970 to 9999 (GeneralizedTime).
    fn generalized_time() -> impl Strategy<Value = SystemTime> {
        (0u64..253_402_300_799).prop_map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = not_after_der(&bytes);
            let _ = not_after_pem(&bytes);
            let _ = not_after_pem(pem(&bytes).as_bytes());
        }

        #[test]
        fn arbitrary_time_fields_never_panic(
            tag in prop_oneof![Just(0x17u8), Just(0x18u8), any::<u8>()],
            text in proptest::collection::vec(any::<u8>(), 0..20),
            text_str in "\\PC{0,15}Z?",
        ) {
            let _ = not_after_der(&certificate(&der(tag, &text), true, 3));
            let _ = not_after_der(&certificate(&der(tag, text_str.as_bytes()), true, 3));
        }

        #[test]
        fn generated_certificates_parse_back(
            t in prop_oneof![utc_time().prop_map(|t| (t, false)), generalized_time().prop_map(|t| (t, true))],
            versioned in any::<bool>(),
            filler in 0usize..400,
        ) {
            let (t, generalized) = t;
            let cert = certificate(&time(t, generalized), versioned, filler);
            prop_assert_eq!(not_after_der(&cert), Some(t));
            prop_assert_eq!(not_after_pem(pem(&cert).as_bytes()), Some(t));
        }

        #[test]
        fn a_bundle_yields_its_earliest_expiry(
            times in proptest::collection::vec(generalized_time(), 1..5),
            junk in "[ -~\\n]{0,40}",
        ) {
            let bundle: String = times
                .iter()
                .map(|t| format!("{junk}{}", pem(&certificate(&time(*t, true), true, 1))))
                .collect();
            prop_assert_eq!(not_after_pem(bundle.as_bytes()), times.iter().min().copied());
        }
    }

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
