//! Reader for Java `.properties` files, the format of Kafka's server.properties.

use std::collections::BTreeMap;

/// Parses the text of a `.properties` file into key/value pairs (later keys win).
///
/// Supports `#`/`!` comments, `=`, `:` or whitespace separators, backslash line continuations and
/// the escapes `\t \n \r \f \uXXXX \\`.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut logical = first.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        out.insert(unescape(&key), unescape(value.trim_start()));
    }
    out
}

/// A line continues when it ends in an odd number of backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (String, &str) {
    let mut key = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                key.push(c);
                if let Some((_, escaped)) = chars.next() {
                    key.push(escaped);
                }
            }
            '=' | ':' => return (key, &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (key, rest);
            }
            c => key.push(c),
        }
    }
    (key, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_kafka_style_file() {
        let text = "# comment\n! other\nbroker.id=1\nlisteners = PLAINTEXT://:9092\n\
                    log.dirs:/tmp/a\nzookeeper.connect  localhost:2181\n\
                    long.value=a,\\\n   b\nescaped=tab\\there\n\n";
        let p = parse(text);
        assert_eq!(p["broker.id"], "1");
        assert_eq!(p["listeners"], "PLAINTEXT://:9092");
        assert_eq!(p["log.dirs"], "/tmp/a");
        assert_eq!(p["zookeeper.connect"], "localhost:2181");
        assert_eq!(p["long.value"], "a,b");
        assert_eq!(p["escaped"], "tab\there");
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn later_keys_win_and_empty_values_allowed() {
        let p = parse("a=1\na=2\nb=\n");
        assert_eq!(p["a"], "2");
        assert_eq!(p["b"], "");
    }
}
