//! Splitting a command line the way a POSIX shell splits words, for the
//! options that name a program and its arguments (`-o sftp.command=…`,
//! `-o sftp.args=…`, `-o rclone.args=…`): white space separates words;
//! single quotes keep everything literally; double quotes keep white
//! space and honour `\"`, `\\`, `\$` and `` \` ``; a backslash outside
//! quotes escapes the next character (a backslash before a newline
//! joins the lines). No expansion of any kind.

/// The words of `line`, or what is wrong with it (an unclosed quote, a
/// trailing backslash).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed single quote in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed double quote in {line:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed double quote in {line:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(format!("trailing backslash in {line:?}")),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn splits_like_a_shell() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("  ssh  -p 22 host ", &["ssh", "-p", "22", "host"]),
            ("a 'b c' d", &["a", "b c", "d"]),
            (
                r#"-o "ProxyCommand=ssh -W %h:%p gw""#,
                &["-o", "ProxyCommand=ssh -W %h:%p gw"],
            ),
            (r#""a\"b" 'c\d'"#, &["a\"b", "c\\d"]),
            (r"a\ b c", &["a b", "c"]),
            ("''", &[""]),
            ("x''y", &["xy"]),
            ("a\\\nb", &["ab"]),
            (
                r#"ssh -i "/my keys/id" -o 'ProxyCommand=nc %h %p' a\ b "x\"y" ''"#,
                &[
                    "ssh",
                    "-i",
                    "/my keys/id",
                    "-o",
                    "ProxyCommand=nc %h %p",
                    "a b",
                    "x\"y",
                    "",
                ],
            ),
        ];
        for (line, want) in cases {
            assert_eq!(split_words(line).unwrap(), *want, "{line:?}");
        }
        for bad in ["'open", "\"open", "end\\"] {
            assert!(split_words(bad).is_err(), "{bad:?}");
        }
    }
}
