//! The lexer: text, and the tokens of each action, with Go's trim markers (`{{- ` trims the white space
//! before, ` -}}` the white space after) and comments (`{{/* … */}}`) resolved here.

use crate::{Error, Result};

/// A token of an action.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// Text outside actions.
    Text(String),
    /// `{{`.
    Open,
    /// `}}`.
    Close,
    /// A keyword or function name.
    Ident(String),
    /// `.Name`.
    Field(String),
    /// `.` alone.
    Dot,
    /// `$name`, or `$` (the data).
    Var(String),
    /// A string constant.
    Str(String),
    /// A number constant as written.
    Number(String),
    /// A character constant.
    Char(char),
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `|`.
    Pipe,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,`.
    Comma,
}

/// A token, and whether white space came before it (`$x.Field` chains, `$x .Field` does not).
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// White space before it.
    pub spaced: bool,
    /// Its line (1-based), for messages.
    pub line: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `src` into tokens.
pub fn lex(src: &str) -> Result<Vec<Token>> {
    let b = src.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut pos = 0;
    let line_at = |p: usize| src[..p].matches('\n').count() + 1;
    while pos < b.len() {
        let Some(rel) = src[pos..].find("{{") else {
            push_text(&mut out, &src[pos..], line_at(pos));
            break;
        };
        let open = pos + rel;
        let mut text = &src[pos..open];
        let mut start = open + 2;
        if b.get(start) == Some(&b'-') && b.get(start + 1).is_some_and(|c| is_space(*c)) {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            start += 2;
        }
        push_text(&mut out, text, line_at(pos));
        // a comment
        let after_ws = start + src[start..].len() - src[start..].trim_start().len();
        if src[after_ws..].starts_with("/*") && (after_ws == start || start != open + 2) {
            let Some(end) = src[after_ws + 2..].find("*/") else {
                return Err(Error::Parse(format!("{}: unclosed comment", line_at(open))));
            };
            let mut p = after_ws + 2 + end + 2;
            let (close, trim) = close_at(src, p).ok_or_else(|| {
                Error::Parse(format!(
                    "{}: comment ends before closing delimiter",
                    line_at(open)
                ))
            })?;
            p = close;
            if trim {
                p = skip_space(b, p);
            }
            pos = p;
            continue;
        }
        out.push(Token {
            tok: Tok::Open,
            spaced: false,
            line: line_at(open),
        });
        pos = lex_action(src, start, &mut out, &line_at)?;
    }
    Ok(out)
}

fn push_text(out: &mut Vec<Token>, text: &str, line: usize) {
    if !text.is_empty() {
        out.push(Token {
            tok: Tok::Text(text.to_string()),
            spaced: false,
            line,
        });
    }
}

fn skip_space(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && is_space(b[p]) {
        p += 1;
    }
    p
}

/// At `p` (white space allowed first): `}}` or ` -}}`; returns the position after it and whether it trims.
fn close_at(src: &str, p: usize) -> Option<(usize, bool)> {
    let b = src.as_bytes();
    let q = skip_space(b, p);
    if q > p && src[q..].starts_with("-}}") {
        return Some((q + 3, true));
    }
    if src[q..].starts_with("}}") {
        return Some((q + 2, false));
    }
    None
}

fn lex_action(
    src: &str,
    mut p: usize,
    out: &mut Vec<Token>,
    line_at: &dyn Fn(usize) -> usize,
) -> Result<usize> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    loop {
        let spaced = p < b.len() && is_space(b[p]);
        if let Some((end, trim)) = close_at(src, p)
            && depth == 0
        {
            out.push(Token {
                tok: Tok::Close,
                spaced,
                line: line_at(p),
            });
            return Ok(if trim { skip_space(b, end) } else { end });
        }
        p = skip_space(b, p);
        if p >= b.len() {
            return Err(Error::Parse(format!("{}: unclosed action", line_at(p))));
        }
        let line = line_at(p);
        let c = src[p..].chars().next().expect("not at the end");
        let mut push = |tok: Tok| {
            out.push(Token { tok, spaced, line });
        };
        match c {
            '|' => {
                push(Tok::Pipe);
                p += 1;
            }
            '(' => {
                depth += 1;
                push(Tok::LParen);
                p += 1;
            }
            ')' => {
                depth = depth.saturating_sub(1);
                push(Tok::RParen);
                p += 1;
            }
            ',' => {
                push(Tok::Comma);
                p += 1;
            }
            ':' if src[p..].starts_with(":=") => {
                push(Tok::Declare);
                p += 2;
            }
            '=' => {
                push(Tok::Assign);
                p += 1;
            }
            '"' => {
                let (s, end) = quoted(src, p)
                    .ok_or_else(|| Error::Parse(format!("{line}: unterminated quoted string")))?;
                push(Tok::Str(s));
                p = end;
            }
            '`' => {
                let end = src[p + 1..]
                    .find('`')
                    .ok_or_else(|| Error::Parse(format!("{line}: unterminated raw quoted string")))?;
                push(Tok::Str(src[p + 1..p + 1 + end].to_string()));
                p = p + end + 2;
            }
            '\'' => {
                let (s, end) = char_const(src, p)
                    .ok_or_else(|| Error::Parse(format!("{line}: bad character constant")))?;
                push(Tok::Char(s));
                p = end;
            }
            '$' => {
                let name: String = src[p + 1..].chars().take_while(|c| is_ident(*c)).collect();
                p += 1 + name.len();
                push(Tok::Var(name));
            }
            '.' => {
                let next = src[p + 1..].chars().next();
                match next {
                    Some(n) if n.is_ascii_digit() => {
                        let n = number(src, p);
                        push(Tok::Number(src[p..n].to_string()));
                        p = n;
                    }
                    Some(n) if is_ident(n) => {
                        let name: String = src[p + 1..].chars().take_while(|c| is_ident(*c)).collect();
                        p += 1 + name.len();
                        push(Tok::Field(name));
                    }
                    _ => {
                        push(Tok::Dot);
                        p += 1;
                    }
                }
            }
            '-' | '+' | '0'..='9'
                if c.is_ascii_digit() || src[p + 1..].starts_with(|d: char| d.is_ascii_digit()) =>
            {
                let n = number(src, p + 1);
                push(Tok::Number(src[p..n].to_string()));
                p = n;
            }
            c if is_ident(c) => {
                let name: String = src[p..].chars().take_while(|c| is_ident(*c)).collect();
                p += name.len();
                push(Tok::Ident(name));
            }
            c => return Err(Error::Parse(format!("{line}: unexpected {c:?} in command"))),
        }
    }
}

fn number(src: &str, mut p: usize) -> usize {
    let b = src.as_bytes();
    while p < b.len() {
        let c = b[p];
        let exp_sign = (c == b'-' || c == b'+') && p > 0 && matches!(b[p - 1], b'e' | b'E' | b'p' | b'P');
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
            p += 1;
        } else {
            break;
        }
    }
    p
}

fn escape(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<char> {
    let (_, e) = chars.next()?;
    Some(match e {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'v' => '\x0b',
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        'x' | 'u' | 'U' => {
            let n = match e {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let mut v = 0u32;
            for _ in 0..n {
                v = v * 16 + chars.next()?.1.to_digit(16)?;
            }
            char::from_u32(v)?
        }
        '0'..='7' => {
            let mut v = e.to_digit(8)?;
            for _ in 0..2 {
                v = v * 8 + chars.next()?.1.to_digit(8)?;
            }
            char::from_u32(v)?
        }
        _ => return None,
    })
}

fn quoted(src: &str, p: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = src[p + 1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, p + 1 + i + 1)),
            '\\' => out.push(escape(&mut chars)?),
            '\n' => return None,
            c => out.push(c),
        }
    }
    None
}

fn char_const(src: &str, p: usize) -> Option<(char, usize)> {
    let mut chars = src[p + 1..].char_indices().peekable();
    let (_, c) = chars.next()?;
    let c = if c == '\\' { escape(&mut chars)? } else { c };
    let (i, close) = chars.next()?;
    (close == '\'').then_some((c, p + 1 + i + 1))
}
