//! What the console's files are served as: their own text, less what only their readers
//! need. Whole-line comments, blank lines and indentation go; code is left as written
//! (no renaming, no joining of lines), and the inside of a template literal spanning lines
//! (the console's `html` templates, messages) is kept byte for byte. The files in `web/`
//! stay commented; this runs when `build.rs` embeds them, and the tests compare what is
//! served with it.
//!
//! Used by `build.rs` (`#[path]`) and by the console module's tests, so it depends on
//! nothing but `std`.

/// The served form of the file `name` with contents `text`.
pub fn served(name: &str, text: &str) -> String {
    if name.ends_with(".js") {
        lean(text, true)
    } else if name.ends_with(".css") {
        lean(text, false)
    } else {
        text.to_string()
    }
}

/// Template-literal delimiters on a line: backticks not escaped with a backslash.
fn backticks(line: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in line.chars() {
        if c == '`' && !escaped {
            count += 1;
        }
        escaped = c == '\\' && !escaped;
    }
    count
}

/// Drops whole-line `//` (JavaScript only) and `/* … */` comments, blank lines and
/// indentation, outside template literals.
fn lean(text: &str, js: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_template = false;
    let mut in_comment = false;
    for line in text.lines() {
        if in_template {
            out.push_str(line);
            out.push('\n');
            in_template = backticks(line).is_multiple_of(2);
            continue;
        }
        let mut code = line.trim();
        if in_comment {
            match code.find("*/") {
                Some(end) => {
                    in_comment = false;
                    code = code[end + 2..].trim_start();
                }
                None => continue,
            }
        } else if js && code.starts_with("//") {
            continue;
        } else if code.starts_with("/*") {
            match code[2..].find("*/") {
                // A comment, then code on the same line: the code stays.
                Some(end) => code = code[2 + end + 2..].trim_start(),
                None => {
                    in_comment = true;
                    continue;
                }
            }
        }
        if code.is_empty() {
            continue;
        }
        // A template literal left open at the end of this line keeps the line's own end
        // as it was (trailing spaces in it are content).
        let opens = js && !backticks(code).is_multiple_of(2);
        if opens {
            out.push_str(line.trim_start());
        } else {
            out.push_str(code);
        }
        out.push('\n');
        in_template = opens;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_indentation_go_and_template_literals_stay() {
        let js = "// a module comment\n\
                  /**\n * A doc comment.\n */\n\
                  export function f(x) {\n\
                  \x20 // inside\n\
                  \x20 const a = 1; // trailing stays\n\
                  \n\
                  \x20 return html`<div>\n\
                  \x20     // not a comment: template text\n\
                  \x20   ${x ? html`<b>y</b>` : null}\n\
                  \x20 </div>`;\n\
                  }\n\
                  /* one */ const b = `a\\`b`;\n";
        assert_eq!(
            served("m.js", js),
            "export function f(x) {\n\
             const a = 1; // trailing stays\n\
             return html`<div>\n\
             \x20     // not a comment: template text\n\
             \x20   ${x ? html`<b>y</b>` : null}\n\
             \x20 </div>`;\n\
             }\n\
             const b = `a\\`b`;\n"
        );
    }

    #[test]
    fn css_loses_its_comments_and_other_files_are_served_as_they_are() {
        let css = "/* Colours */\n:root {\n  --a: #fff;\n}\n/*\n multi\n*/\na { color: red; }\n";
        assert_eq!(
            served("s.css", css),
            ":root {\n--a: #fff;\n}\na { color: red; }\n"
        );
        // `//` is no CSS comment (it may be part of a URL).
        assert_eq!(served("s.css", "  //x\n"), "//x\n");
        let html = "<!doctype html>\n  <!-- kept -->\n";
        assert_eq!(served("index.html", html), html);
    }
}
