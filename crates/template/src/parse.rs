//! The parser: tokens to a tree of text, actions and control structures.

use crate::{
    Error, Result, Value,
    lex::{Tok, Token, lex},
};

/// An operand of a command.
#[derive(Clone, Debug)]
pub enum Operand {
    /// `.`, then fields.
    Dot(Vec<String>),
    /// `$name`, then fields.
    Var(String, Vec<String>),
    /// `(pipeline)`, then fields.
    Pipe(Box<Pipeline>, Vec<String>),
    /// A function, by name.
    Func(String),
    /// A constant.
    Const(Value),
}

/// One command of a pipeline: a function or an operand, with arguments.
#[derive(Clone, Debug)]
pub struct Command {
    pub args: Vec<Operand>,
}

/// A pipeline, with the variables it declares or assigns.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub vars: Vec<String>,
    pub declare: bool,
    pub cmds: Vec<Command>,
    pub line: usize,
}

/// A node of the tree.
#[derive(Clone, Debug)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Break,
    Continue,
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    pub(crate) nodes: Vec<Node>,
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Self> {
        let tokens = lex(src)?;
        let mut p = Parser {
            toks: tokens,
            pos: 0,
            range_depth: 0,
        };
        let (nodes, stop) = p.list()?;
        match stop {
            Stop::Eof => Ok(Self { nodes }),
            Stop::End(line) => Err(Error::Parse(format!("{line}: unexpected {{{{end}}}}"))),
            Stop::Else(line, _) => Err(Error::Parse(format!("{line}: unexpected {{{{else}}}}"))),
        }
    }
}

enum Stop {
    Eof,
    End(usize),
    /// `{{else}}`, or `{{else if …}}` / `{{else with …}}` (the keyword).
    Else(usize, Option<String>),
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    range_depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn line(&self) -> usize {
        self.peek().or_else(|| self.toks.last()).map_or(1, |t| t.line)
    }

    fn err<T>(&self, msg: impl std::fmt::Display) -> Result<T> {
        Err(Error::Parse(format!("{}: {msg}", self.line())))
    }

    fn expect_close(&mut self, what: &str) -> Result<()> {
        match self.next() {
            Some(Token { tok: Tok::Close, .. }) => Ok(()),
            _ => {
                self.pos -= 1;
                self.err(format!("unexpected token in {what}"))
            }
        }
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        loop {
            let Some(t) = self.next() else {
                return Ok((nodes, Stop::Eof));
            };
            match t.tok {
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Open => {
                    let line = t.line;
                    let keyword = match self.peek() {
                        Some(Token {
                            tok: Tok::Ident(k), ..
                        }) => Some(k.clone()),
                        _ => None,
                    };
                    match keyword.as_deref() {
                        Some("end") => {
                            self.pos += 1;
                            self.expect_close("end")?;
                            return Ok((nodes, Stop::End(line)));
                        }
                        Some("else") => {
                            self.pos += 1;
                            let chained = match self.peek() {
                                Some(Token {
                                    tok: Tok::Ident(k), ..
                                }) if k == "if" || k == "with" => {
                                    let k = k.clone();
                                    self.pos += 1;
                                    Some(k)
                                }
                                _ => {
                                    self.expect_close("else")?;
                                    None
                                }
                            };
                            return Ok((nodes, Stop::Else(line, chained)));
                        }
                        Some("if") | Some("range") | Some("with") => {
                            let k = keyword.expect("matched");
                            self.pos += 1;
                            nodes.push(self.control(&k)?);
                        }
                        Some("break") | Some("continue") => {
                            if self.range_depth == 0 {
                                return self.err(format!(
                                    "{{{{{}}}}} outside {{{{range}}}}",
                                    keyword.expect("matched")
                                ));
                            }
                            let k = keyword.expect("matched");
                            self.pos += 1;
                            self.expect_close(&k)?;
                            nodes.push(if k == "break" { Node::Break } else { Node::Continue });
                        }
                        Some(k @ ("define" | "template" | "block")) => {
                            return self.err(format!(
                                "{{{{{k}}}}} is not supported in commit message templates"
                            ));
                        }
                        _ => {
                            let pipe = self.pipeline(true)?;
                            self.expect_close("command")?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                _ => return self.err("unexpected token"),
            }
        }
    }

    /// `if`, `range` or `with`, after its keyword: the pipeline, the body, an optional else and the end.
    fn control(&mut self, keyword: &str) -> Result<Node> {
        let pipe = self.pipeline(true)?;
        if !pipe.vars.is_empty() && pipe.vars.len() > 1 && keyword != "range" {
            return self.err(format!("too many declarations in {keyword}"));
        }
        self.expect_close(keyword)?;
        if keyword == "range" {
            self.range_depth += 1;
        }
        let (body, stop) = self.list()?;
        if keyword == "range" {
            self.range_depth -= 1;
        }
        let otherwise = match stop {
            Stop::Eof => return self.err(format!("unexpected EOF: {{{{{keyword}}}}} without {{{{end}}}}")),
            Stop::End(_) => Vec::new(),
            Stop::Else(_, Some(chained)) => {
                if keyword == "range" || chained != keyword {
                    return self.err(format!("{{{{else {chained}}}}} in {{{{{keyword}}}}}"));
                }
                // NB: the chained if/with ends at the same {{end}}
                vec![self.control(&chained)?]
            }
            Stop::Else(_, None) => {
                let (otherwise, stop) = self.list()?;
                match stop {
                    Stop::End(_) => otherwise,
                    _ => {
                        return self.err(format!(
                            "expected {{{{end}}}} after {{{{else}}}} of {{{{{keyword}}}}}"
                        ));
                    }
                }
            }
        };
        Ok(match keyword {
            "if" => Node::If(pipe, body, otherwise),
            "range" => Node::Range(pipe, body, otherwise),
            _ => Node::With(pipe, body, otherwise),
        })
    }

    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipeline> {
        let line = self.line();
        let mut vars = Vec::new();
        let mut declare = false;
        if allow_decl {
            let save = self.pos;
            let mut names = Vec::new();
            while let Some(Token { tok: Tok::Var(v), .. }) = self.peek() {
                names.push(v.clone());
                self.pos += 1;
                match self.peek().map(|t| &t.tok) {
                    Some(Tok::Comma) if names.len() == 1 => {
                        self.pos += 1;
                        continue;
                    }
                    Some(Tok::Declare) => {
                        self.pos += 1;
                        declare = true;
                        vars = names;
                        break;
                    }
                    Some(Tok::Assign) => {
                        self.pos += 1;
                        vars = names;
                        break;
                    }
                    _ => break,
                }
            }
            if vars.is_empty() {
                self.pos = save;
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command()?;
            cmds.push(cmd);
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Pipe) => {
                    self.pos += 1;
                }
                _ => break,
            }
        }
        Ok(Pipeline {
            vars,
            declare,
            cmds,
            line,
        })
    }

    fn command(&mut self) -> Result<Command> {
        let mut args = Vec::new();
        while let Some(t) = self.peek() {
            match t.tok {
                Tok::Close | Tok::Pipe | Tok::RParen => break,
                _ => args.push(self.operand()?),
            }
        }
        if args.is_empty() {
            return self.err("missing value for command");
        }
        Ok(Command { args })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut fields = Vec::new();
        while let Some(Token {
            tok: Tok::Field(f),
            spaced: false,
            ..
        }) = self.peek()
        {
            fields.push(f.clone());
            self.pos += 1;
        }
        fields
    }

    fn operand(&mut self) -> Result<Operand> {
        let t = self.next().expect("peeked");
        Ok(match t.tok {
            Tok::Dot => Operand::Dot(Vec::new()),
            Tok::Field(f) => {
                let mut chain = vec![f];
                chain.extend(self.fields());
                Operand::Dot(chain)
            }
            Tok::Var(v) => {
                let chain = self.fields();
                Operand::Var(v, chain)
            }
            Tok::LParen => {
                let pipe = self.pipeline(true)?;
                match self.next() {
                    Some(Token { tok: Tok::RParen, .. }) => {}
                    _ => return self.err("unclosed left paren"),
                }
                let chain = self.fields();
                Operand::Pipe(Box::new(pipe), chain)
            }
            Tok::Str(s) => Operand::Const(Value::Str(s)),
            Tok::Char(c) => Operand::Const(Value::Int(c as i64)),
            Tok::Number(n) => Operand::Const(
                parse_number(&n)
                    .ok_or_else(|| Error::Parse(format!("{}: bad number syntax: {n:?}", t.line)))?,
            ),
            Tok::Ident(i) => match i.as_str() {
                "true" => Operand::Const(Value::Bool(true)),
                "false" => Operand::Const(Value::Bool(false)),
                "nil" => Operand::Const(Value::Nil),
                "if" | "else" | "end" | "range" | "with" | "break" | "continue" | "define" | "template"
                | "block" => {
                    return Err(Error::Parse(format!("{}: unexpected <{i}> in command", t.line)));
                }
                _ => {
                    if !crate::funcs::exists(&i) {
                        return Err(Error::Parse(format!("{}: function {i:?} not defined", t.line)));
                    }
                    Operand::Func(i)
                }
            },
            other => {
                return Err(Error::Parse(format!(
                    "{}: unexpected {other:?} in operand",
                    t.line
                )));
            }
        })
    }
}

fn parse_number(n: &str) -> Option<Value> {
    let clean = n.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Value::Int(if neg { -i } else { i }));
    }
    let f: f64 = lower.parse().ok()?;
    Some(Value::Float(if neg { -f } else { f }))
}
