//! Running a parsed template on a value.

use crate::{
    Error, Result, Template, Value, funcs,
    parse::{Command, Node, Operand, Pipeline},
};

/// How far `range` runs `break` and `continue` take effect.
enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    out: String,
    line: usize,
}

/// Loops a `range` may run, so a template cannot spin forever on `range` over a huge integer.
const MAX_ITERATIONS: i64 = 1_000_000;

impl Template {
    /// Runs the template with `data` as `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String> {
        let mut st = State {
            root: data,
            vars: Vec::new(),
            out: String::new(),
            line: 1,
        };
        st.walk(&self.nodes, data)?;
        Ok(st.out)
    }
}

impl State<'_> {
    fn err<T>(&self, msg: impl std::fmt::Display) -> Result<T> {
        Err(Error::Exec(format!("executing at line {}: {msg}", self.line)))
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.pipeline(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        match v {
                            Value::Nil => self.out.push_str("<no value>"),
                            v => self.out.push_str(&v.to_go_string()),
                        }
                    }
                }
                Node::If(pipe, body, otherwise) | Node::With(pipe, body, otherwise) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(pipe, dot)?;
                    let flow = if v.truth() {
                        let inner = if matches!(node, Node::With(..)) { &v } else { dot };
                        self.walk(body, inner)?
                    } else {
                        self.walk(otherwise, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(pipe, body, otherwise) => {
                    let mark = self.vars.len();
                    self.range(pipe, body, otherwise, dot)?;
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, pipe: &Pipeline, body: &[Node], otherwise: &[Node], dot: &Value) -> Result<()> {
        self.line = pipe.line;
        let v = self.commands(&pipe.cmds, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v))
                .collect(),
            Value::Map(m) => m,
            Value::Int(n) => {
                if pipe.vars.len() > 1 {
                    return self.err("can't use two variables when ranging over an integer");
                }
                if n > MAX_ITERATIONS {
                    return self.err(format!("range over {n}: more than {MAX_ITERATIONS} iterations"));
                }
                (0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i))).collect()
            }
            Value::Nil => Vec::new(),
            other => return self.err(format!("range can't iterate over {}", other.to_go_string())),
        };
        if items.is_empty() {
            self.walk(otherwise, dot)?;
            return Ok(());
        }
        let mark = self.vars.len();
        for (key, elem) in items {
            self.vars.truncate(mark);
            match pipe.vars.as_slice() {
                [] => {}
                [v] => self.vars.push((v.clone(), elem.clone())),
                [k, v, ..] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), elem.clone()));
                }
            }
            match self.walk(body, &elem)? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value> {
        self.line = pipe.line;
        let v = self.commands(&pipe.cmds, dot)?;
        if let Some(name) = pipe.vars.first() {
            if pipe.declare {
                self.vars.push((name.clone(), v.clone()));
            } else {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return self.err(format!("undefined variable: ${name}")),
                }
            }
        }
        Ok(v)
    }

    fn commands(&mut self, cmds: &[Command], dot: &Value) -> Result<Value> {
        let mut last: Option<Value> = None;
        for cmd in cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        Ok(last.unwrap_or(Value::Nil))
    }

    fn command(&mut self, cmd: &Command, dot: &Value, piped: Option<Value>) -> Result<Value> {
        let (first, rest) = cmd.args.split_first().expect("a command has an operand");
        let Operand::Func(name) = first else {
            if !rest.is_empty() || piped.is_some() {
                return self.err(format!("can't give argument to non-function {}", describe(first)));
            }
            return self.operand(first, dot);
        };
        match name.as_str() {
            "and" | "or" => {
                let want = name == "or";
                let mut last = Value::Nil;
                let n = rest.len() + usize::from(piped.is_some());
                if n == 0 {
                    return self.err(format!("wrong number of args for {name}: want at least 1 got 0"));
                }
                for op in rest {
                    last = self.operand(op, dot)?;
                    if last.truth() == want {
                        return Ok(last);
                    }
                }
                if let Some(p) = piped {
                    last = p;
                }
                Ok(last)
            }
            _ => {
                let mut args = Vec::with_capacity(rest.len() + 1);
                for op in rest {
                    args.push(self.operand(op, dot)?);
                }
                args.extend(piped);
                funcs::call(name, args).or_else(|e| self.err(format!("error calling {name}: {e}")))
            }
        }
    }

    fn operand(&mut self, op: &Operand, dot: &Value) -> Result<Value> {
        match op {
            Operand::Dot(chain) => self.chain(dot.clone(), chain),
            Operand::Var(name, chain) => {
                let v = if name.is_empty() {
                    self.root.clone()
                } else {
                    match self.vars.iter().rev().find(|(n, _)| n == name) {
                        Some((_, v)) => v.clone(),
                        None => return self.err(format!("undefined variable: ${name}")),
                    }
                };
                self.chain(v, chain)
            }
            Operand::Pipe(pipe, chain) => {
                let v = self.pipeline(pipe, dot)?;
                self.chain(v, chain)
            }
            Operand::Func(name) => {
                funcs::call(name, Vec::new()).or_else(|e| self.err(format!("error calling {name}: {e}")))
            }
            Operand::Const(v) => Ok(v.clone()),
        }
    }

    fn chain(&self, mut v: Value, chain: &[String]) -> Result<Value> {
        for name in chain {
            v = match v {
                Value::Struct(s) => match s.field(name) {
                    Some(f) => f.clone(),
                    None => return self.err(format!("can't evaluate field {name} in type {}", s.type_name)),
                },
                Value::Map(m) => m
                    .into_iter()
                    .find(|(k, _)| matches!(k, Value::Str(k) if k == name))
                    .map_or(Value::Nil, |(_, v)| v),
                Value::Nil => return self.err(format!("nil pointer evaluating interface {{}}.{name}")),
                other => {
                    return self.err(format!(
                        "can't evaluate field {name} in type {}",
                        other.type_name()
                    ));
                }
            };
        }
        Ok(v)
    }
}

fn describe(op: &Operand) -> String {
    match op {
        Operand::Dot(chain) if chain.is_empty() => ".".into(),
        Operand::Dot(chain) => format!(".{}", chain.join(".")),
        Operand::Var(v, chain) => format!(
            "${v}{}",
            chain.iter().map(|c| format!(".{c}")).collect::<String>()
        ),
        Operand::Pipe(..) => "(pipeline)".into(),
        Operand::Func(f) => f.clone(),
        Operand::Const(v) => v.to_go_string(),
    }
}
