//! The one wildcard Gantry's rules use: in tag rules, identities and claim rules.

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none
/// included) and everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        for (pattern, text, expected) in [
            (
                "https://github.com/acme/*",
                "https://github.com/acme/api/.github/workflows/release.yml@refs/heads/main",
                true,
            ),
            ("*@acme.example", "alice@acme.example", true),
            ("*@acme.example", "alice@evil.example", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*", "", true),
            ("v*", "v1.2.3", true),
            ("v*", "1.2.3", false),
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} ~ {text}");
        }
    }
}
