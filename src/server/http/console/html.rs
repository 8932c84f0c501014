//! HTML building blocks of the console: escaping, percent-encoding of names in URLs, the page
//! layout with the embedded stylesheet, tables and number formatting. Every text that comes
//! from the cluster (names, hosts, config values) goes through [`esc`] or [`href`].

use std::fmt::Write;

/// The stylesheet, embedded in every page (no other asset is needed).
const STYLE: &str = include_str!("style.css");

/// `text` with `& < > " '` escaped, safe inside element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `segment` percent-encoded for one path segment: every byte but RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`, so `/`, `?`, `#`, `%` and spaces in a name
/// survive the trip through a URL.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A percent-encoded path segment decoded; `None` for a malformed escape or bytes that are not
/// UTF-8. `+` stays `+` (it means a space only in query strings).
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A link to `prefix` followed by `name` as one encoded segment, with `name` as its text.
pub fn href(prefix: &str, name: &str) -> String {
    format!(
        "<a href=\"{}{}\">{}</a>",
        prefix,
        encode_segment(name),
        esc(name)
    )
}

/// The navigation entries: (path, label).
const NAV: [(&str, &str); 4] = [
    ("/", "Overview"),
    ("/topics", "Topics"),
    ("/groups", "Consumer groups"),
    ("/configs", "Broker configs"),
];

/// A whole page: `title` (escaped here), the navigation with `section` marked, and `body`
/// (already HTML). `context` is the line under the title bar (already HTML).
pub fn layout(title: &str, section: &str, context: &str, body: &str) -> String {
    let mut nav = String::new();
    for (path, label) in NAV {
        let current = if path == section {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{path}\"{current}>{label}</a>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Odradek</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header><span class=\"brand\">Odradek</span><nav>{nav}</nav>\
         <span class=\"context\">{context}</span></header>\n<main>\n<h1>{title}</h1>\n{body}</main>\n\
         </body>\n</html>\n",
        title = esc(title),
    )
}

/// A table with a header row; `rows` are already HTML cells, one `Vec` per row. An empty
/// table shows `empty` instead.
pub fn table(id: &str, headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\" id=\"{id}\">{}</p>\n", esc(empty));
    }
    let mut out = format!("<table id=\"{id}\">\n<thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// A definition list of (term, HTML value) pairs: the facts at the top of a page.
pub fn facts(items: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (term, value) in items {
        let _ = write!(out, "<div><dt>{}</dt><dd>{value}</dd></div>", esc(term));
    }
    out.push_str("</dl>\n");
    out
}

/// The dash shown for a value that is not known here.
pub const UNKNOWN: &str = "—";

/// An optional number, or the dash.
pub fn opt(value: Option<i64>) -> String {
    value.map_or_else(|| UNKNOWN.to_string(), |v| v.to_string())
}

/// Broker ids as a comma-separated list.
pub fn ids(list: &[i32]) -> String {
    list.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A byte count in binary units (exact bytes in the title attribute).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let shown = if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    };
    format!("<span title=\"{n} bytes\">{shown}</span>")
}

/// A small label (`kind` picks its colour in the stylesheet).
pub fn badge(kind: &str, text: &str) -> String {
    format!("<span class=\"badge {kind}\">{}</span>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(esc("plain-name_1.ü"), "plain-name_1.ü");
    }

    #[test]
    fn segments_round_trip_through_percent_encoding() {
        for name in [
            "orders", "a/b", "50% off", "q?x#y", "späß", "a+b", "", "%2F",
        ] {
            let encoded = encode_segment(name);
            assert!(encoded.bytes().all(|b| b.is_ascii_graphic() && b != b'/'));
            assert_eq!(decode_segment(&encoded).as_deref(), Some(name), "{encoded}");
        }
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("ü"), "%C3%BC");
    }

    #[test]
    fn malformed_escapes_do_not_decode() {
        assert_eq!(decode_segment("a%2"), None);
        assert_eq!(decode_segment("a%zz"), None);
        assert_eq!(decode_segment("%FF"), None);
        assert_eq!(decode_segment("a+b").as_deref(), Some("a+b"));
        assert_eq!(decode_segment("%41%62").as_deref(), Some("Ab"));
    }

    #[test]
    fn links_encode_the_target_and_escape_the_text() {
        assert_eq!(
            href("/groups/", "<g>/1"),
            "<a href=\"/groups/%3Cg%3E%2F1\">&lt;g&gt;/1</a>"
        );
    }

    #[test]
    fn tables_and_layout_escape_what_they_are_given() {
        let t = table("t", &["a<b"], &[vec!["<i>x</i>".into()]], "none");
        assert!(t.contains("<th>a&lt;b</th>") && t.contains("<td><i>x</i></td>"));
        assert!(table("t", &["a"], &[], "no <rows>").contains("no &lt;rows&gt;"));
        let page = layout("<t>", "/topics", "", "<p>b</p>");
        assert!(page.contains("<title>&lt;t&gt; · Odradek</title>"));
        assert!(page.contains("<a href=\"/topics\" aria-current=\"page\">Topics</a>"));
        assert!(!page.contains("<t>"));
    }

    #[test]
    fn byte_counts_in_binary_units() {
        assert!(bytes(512).contains(">512 B<"));
        assert!(bytes(1536).contains(">1.5 KiB<"));
        assert!(bytes(3 << 20).contains(">3.0 MiB<") && bytes(3 << 20).contains("3145728 bytes"));
    }
}
