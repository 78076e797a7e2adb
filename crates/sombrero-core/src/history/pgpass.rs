//! The `PostgreSQL` password file (`~/.pgpass`), read as `libpq` reads it.
//!
//! Why our own ~40 lines: the format is five colon-separated fields per line with `\:`
//! and `\\` escapes and `*` wildcards; the crates that parse it are either parts of
//! larger projects or pull in a parser-combinator library for this one format
//! (docs/decisions/101-postgres-password-sources.md).

/// The password of the first line matching host, port, database and user.
pub(crate) fn lookup(
    text: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), database, user];
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(fields)
        .find(|fields| {
            fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, value)| field == "*" || field == value)
        })
        .map(|mut fields| fields.swap_remove(4))
}

/// The five fields of a line, unescaped; `None` for a malformed line (skipped, as
/// `libpq` does).
fn fields(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        match character {
            '\\' => fields.last_mut()?.push(characters.next().unwrap_or('\\')),
            ':' if fields.len() < 5 => fields.push(String::new()),
            other => fields.last_mut()?.push(other),
        }
    }
    (fields.len() == 5).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    other:5432:*:alice:nope\n\
                    127.0.0.1:5433:history:alice:pa\\:ss\\\\word\n\
                    *:*:*:alice:fallback\n\
                    broken line\n";
        let found = lookup(text, "127.0.0.1", 5433, "history", "alice");
        assert_eq!(found.as_deref(), Some("pa:ss\\word"));
        let found = lookup(text, "127.0.0.1", 5432, "history", "alice");
        assert_eq!(found.as_deref(), Some("fallback"));
        assert_eq!(lookup(text, "127.0.0.1", 5432, "history", "bob"), None);
    }
}
