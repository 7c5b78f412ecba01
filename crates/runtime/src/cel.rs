//! CEL, as the controllers use it (health expressions, `readyExpr`, receiver filters): Kubernetes objects
//! as CEL values, and boolean expressions over named variables.

use std::{collections::HashMap, sync::Arc};

use serde_json::Value;

/// A JSON value as a CEL value (integers as `int`, as Kubernetes CEL reads them).
pub fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let map: HashMap<cel::objects::Key, cel::Value> = map
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

/// Compiles `expr`, with its error as text.
pub fn compile(expr: &str) -> Result<cel::Program, String> {
    cel::Program::compile(expr).map_err(|e| e.to_string())
}

/// Programs compiled by [`compiled`], by expression; emptied when it reaches [`CACHED`] entries.
static PROGRAMS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, Arc<cel::Program>>>> =
    std::sync::LazyLock::new(Default::default);

/// How many compiled expressions [`compiled`] keeps.
const CACHED: usize = 1024;

/// [`compile`], remembered: expressions come from specs and are evaluated again and again (every hook a
/// Receiver takes, every dependency check), so each is compiled once. Failures are not remembered.
pub fn compiled(expr: &str) -> Result<Arc<cel::Program>, String> {
    if let Some(p) = PROGRAMS.lock().expect("CEL cache").get(expr) {
        return Ok(p.clone());
    }
    let program = Arc::new(compile(expr)?);
    let mut cache = PROGRAMS.lock().expect("CEL cache");
    if cache.len() >= CACHED {
        cache.clear();
    }
    cache.insert(expr.to_string(), program.clone());
    Ok(program)
}

/// Runs `program` with `vars` and requires a boolean.
pub fn eval_bool(program: &cel::Program, vars: &[(&str, &Value)]) -> Result<bool, String> {
    let mut ctx = cel::Context::default();
    for (name, value) in vars {
        ctx.add_variable_from_value(*name, to_cel(value));
    }
    match program.execute(&ctx).map_err(|e| e.to_string())? {
        cel::Value::Bool(b) => Ok(b),
        other => Err(format!("the expression gave {other:?}, not a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn compiled_programs_are_reused_and_failures_are_not_kept() {
        let a = compiled("res.metadata.name == 'cached'").unwrap();
        let b = compiled("res.metadata.name == 'cached'").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "compiled once");
        assert_eq!(
            eval_bool(&b, &[("res", &json!({"metadata": {"name": "cached"}}))]),
            Ok(true)
        );
        assert!(compiled("res.metadata.name ==").is_err());
        assert!(
            compiled("res.metadata.name ==").is_err(),
            "a failure is reported every time"
        );
    }

    #[test]
    fn objects_are_variables_and_results_must_be_booleans() {
        let obj = json!({"metadata": {"name": "web", "generation": 2}, "status": {"observedGeneration": 2}});
        let p =
            compile("res.metadata.name == 'web' && res.status.observedGeneration == res.metadata.generation")
                .unwrap();
        assert_eq!(eval_bool(&p, &[("res", &obj)]), Ok(true));
        let p = compile("res.metadata.name").unwrap();
        assert!(
            eval_bool(&p, &[("res", &obj)])
                .unwrap_err()
                .contains("not a boolean")
        );
        assert!(compile("res.(").is_err());
    }
}
