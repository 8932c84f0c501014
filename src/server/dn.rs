//! A certificate subject's distinguished name in the form Java's
//! `X500Principal.getName(RFC2253)` gives it (`CN=client,OU=eng,O=Acme,C=US`), so principals
//! built from it match the ACLs Kafka users already have: the relative names from last to first
//! (the reverse of their encoding), the RFC 2253 keywords (CN, C, L, ST, O, OU, STREET, DC,
//! UID) and other types as dotted OIDs with a `#`-hex value, special characters escaped.

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The subject of a DER certificate in RFC 2253 form, `None` when it does not parse.
pub fn subject_of(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(rfc2253(cert.subject()))
}

/// The name in RFC 2253 form.
pub fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn attribute(atv: &AttributeTypeAndValue<'_>) -> String {
    let oid = atv.attr_type().to_id_string();
    let value = atv.attr_value();
    match (keyword(&oid), text(value.tag().0, value.data)) {
        (Some(keyword), Some(text)) => format!("{keyword}={}", escape(&text)),
        (keyword, _) => {
            let name = keyword.map_or(oid.clone(), str::to_string);
            format!("{name}=#{}", hex_der(value.tag().0, value.data))
        }
    }
}

/// The text of a string value (UTF8, Printable, IA5, Numeric, Teletex as Latin-1, BMP,
/// Universal); `None` for other types.
fn text(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        12 | 18 | 19 | 22 => std::str::from_utf8(data).ok().map(str::to_string),
        20 => Some(data.iter().map(|&b| char::from(b)).collect()),
        30 => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        28 => data
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

/// RFC 2253 escaping: `, + " \ < > ;` anywhere, `#` or a space first, a space last.
fn escape(value: &str) -> String {
    let count = value.chars().count();
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == count && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The value's DER encoding (tag, length, contents) in lower-case hex.
fn hex_der(tag: u32, data: &[u8]) -> String {
    let mut der = vec![u8::try_from(tag).unwrap_or(4)];
    let len = data.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(dn: rcgen::DistinguishedName) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn formats_as_java_rfc2253() {
        use rcgen::DnType;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::OrganizationName, "Acme");
        dn.push(DnType::OrganizationalUnitName, "eng");
        dn.push(DnType::CommonName, "client");
        assert_eq!(
            subject_of(&cert_with(dn)).unwrap(),
            "CN=client,OU=eng,O=Acme,C=US"
        );
    }

    #[test]
    fn escapes_special_characters_and_hexes_unknown_types() {
        use rcgen::DnType;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Acme, Inc.");
        dn.push(DnType::CommonName, " #lead+trail ");
        // emailAddress (1.2.840.113549.1.9.1): no RFC 2253 keyword, so Java prints it in hex.
        dn.push(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Ia5String("a@b".try_into().unwrap()),
        );
        assert_eq!(
            subject_of(&cert_with(dn)).unwrap(),
            r"1.2.840.113549.1.9.1=#1603614062,CN=\ #lead\+trail\ ,O=Acme\, Inc."
        );
    }
}
