//! A small, safe evaluator for `bantime.formula` and `bantime.factor`, which
//! Fail2ban evaluates as Python expressions. It knows Python's arithmetic on
//! ints and floats (`/` true division, `//`, `%`, `**`, shifts, bit operators),
//! comparisons, `and`/`or`/`not`, `x if c else y`, the names Fail2ban exposes
//! (`ban.Time`, `ban.Count`, `banFactor`) and a few functions of `math` and the
//! builtins. Unknown names and syntax errors are config errors at parse time;
//! arithmetic errors (division by zero, overflow) are errors at evaluation.

use std::fmt;

/// A Python number: bools are ints, as in Python.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }

    fn truthy(self) -> bool {
        match self {
            Value::Int(i) => i != 0,
            Value::Float(f) => f != 0.0,
        }
    }

    fn from_bool(b: bool) -> Value {
        Value::Int(b as i64)
    }

    /// Ints beyond i64 become floats (Python would keep a big int; every use
    /// here ends in a float number of seconds).
    fn from_i128(i: i128) -> Value {
        i64::try_from(i).map_or(Value::Float(i as f64), Value::Int)
    }
}

/// The values an expression can refer to.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// `ban.Time`: the jail's ban time.
    pub time: Value,
    /// `ban.Count`: how often the address was banned before.
    pub count: i64,
    /// `banFactor`: the value of `bantime.factor`.
    pub factor: Value,
}

/// A parse or evaluation error, with the column for parse errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    pub column: Option<usize>,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{} at column {}", self.message, c + 1),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ExprError {}

fn eval_err<T>(message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        message: message.into(),
        column: None,
    })
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Var {
    Time,
    Count,
    Factor,
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Exp,
    Pow,
    Log,
    Log2,
    Log10,
    Sqrt,
    Floor,
    Ceil,
    Fabs,
    Min,
    Max,
    Abs,
    Float,
    Int,
    Round,
}

const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("math.exp", Func::Exp, 1, 1),
    ("math.pow", Func::Pow, 2, 2),
    ("math.log", Func::Log, 1, 2),
    ("math.log2", Func::Log2, 1, 1),
    ("math.log10", Func::Log10, 1, 1),
    ("math.sqrt", Func::Sqrt, 1, 1),
    ("math.floor", Func::Floor, 1, 1),
    ("math.ceil", Func::Ceil, 1, 1),
    ("math.fabs", Func::Fabs, 1, 1),
    ("min", Func::Min, 2, usize::MAX),
    ("max", Func::Max, 2, usize::MAX),
    ("abs", Func::Abs, 1, 1),
    ("float", Func::Float, 1, 1),
    ("int", Func::Int, 1, 1),
    ("round", Func::Round, 1, 1),
    ("pow", Func::Pow, 2, 2),
];

const VARS: &[(&str, Var)] = &[
    ("ban.Time", Var::Time),
    ("ban.Count", Var::Count),
    ("banFactor", Var::Factor),
    ("math.e", Var::Float(std::f64::consts::E)),
    ("math.pi", Var::Float(std::f64::consts::PI)),
    ("True", Var::Int(1)),
    ("False", Var::Int(0)),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(Value),
    Var(Var),
    Neg(Box<Node>),
    Invert(Box<Node>),
    Not(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Cmp(Box<Node>, Vec<(CmpOp, Node)>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    If {
        cond: Box<Node>,
        then: Box<Node>,
        other: Box<Node>,
    },
    Call(Func, Vec<Node>),
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let tokens = lex(src)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
            end: src.len(),
        };
        let root = p.test()?;
        match p.peek() {
            None => Ok(Expr { root }),
            Some((_, at)) => Err(p.error_at("unexpected text after the expression", at)),
        }
    }

    pub fn eval(&self, env: &Env) -> Result<Value, ExprError> {
        eval(&self.root, env)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Value),
    Name(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "<", ">", "(", ")",
    ",", "&", "|", "^", "~",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let (v, n) = lex_number(&src[i..]).ok_or_else(|| ExprError {
                message: "invalid number".into(),
                column: Some(i),
            })?;
            out.push((Tok::Num(v), i));
            i += n;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            // Dotted names (`ban.Time`, `math.exp`) are one token.
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push((Tok::Name(src[start..i].to_string()), start));
        } else if let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) {
            out.push((Tok::Op(op), i));
            i += op.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(ExprError {
                message: format!("unexpected character {ch:?}"),
                column: Some(i),
            });
        }
    }
    Ok(out)
}

/// A Python int or float literal at the start of `s`; returns its length.
fn lex_number(s: &str) -> Option<(Value, usize)> {
    let b = s.as_bytes();
    if b.len() > 1 && b[0] == b'0' && matches!(b[1], b'x' | b'X' | b'o' | b'O' | b'b' | b'B') {
        let radix = match b[1] | 0x20 {
            b'x' => 16,
            b'o' => 8,
            _ => 2,
        };
        let n = 2 + s[2..]
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count();
        let digits: String = s[2..n].chars().filter(|c| *c != '_').collect();
        return Some((
            Value::from_i128(i128::from_str_radix(&digits, radix).ok()?),
            n,
        ));
    }
    let mut n = b
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == b'_')
        .count();
    let mut float = false;
    if b.get(n) == Some(&b'.') {
        float = true;
        n += 1;
        n += b[n..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b'_')
            .count();
    }
    if matches!(b.get(n), Some(b'e' | b'E')) {
        let mut m = n + 1;
        if matches!(b.get(m), Some(b'+' | b'-')) {
            m += 1;
        }
        let digits = b[m..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            float = true;
            n = m + digits;
        }
    }
    let text: String = s[..n].chars().filter(|c| *c != '_').collect();
    let v = if float {
        Value::Float(text.parse().ok()?)
    } else {
        Value::from_i128(text.parse().ok()?)
    };
    Some((v, n))
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
    end: usize,
}

/// Deep enough for any real formula, shallow enough for the stack.
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<(&Tok, usize)> {
        self.tokens.get(self.pos).map(|(t, at)| (t, *at))
    }

    fn at(&self) -> usize {
        self.peek().map_or(self.end, |(_, at)| at)
    }

    fn error_at(&self, message: &str, at: usize) -> ExprError {
        ExprError {
            message: message.to_string(),
            column: Some(at),
        }
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some((Tok::Op(o), _)) if *o == op) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some((Tok::Name(n), _)) if n == word) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ExprError> {
        if self.eat_op(op) {
            return Ok(());
        }
        Err(self.error_at(&format!("expected '{op}'"), self.at()))
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at("expression nested too deeply", self.at()));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// `or_test ['if' or_test 'else' test]`
    fn test(&mut self) -> Result<Node, ExprError> {
        self.nested(|p| {
            let then = p.or_test()?;
            if !p.eat_word("if") {
                return Ok(then);
            }
            let cond = p.or_test()?;
            if !p.eat_word("else") {
                return Err(p.error_at("expected 'else'", p.at()));
            }
            let other = p.test()?;
            Ok(Node::If {
                cond: Box::new(cond),
                then: Box::new(then),
                other: Box::new(other),
            })
        })
    }

    fn or_test(&mut self) -> Result<Node, ExprError> {
        let mut left = self.and_test()?;
        while self.eat_word("or") {
            left = Node::Or(Box::new(left), Box::new(self.and_test()?));
        }
        Ok(left)
    }

    fn and_test(&mut self) -> Result<Node, ExprError> {
        let mut left = self.not_test()?;
        while self.eat_word("and") {
            left = Node::And(Box::new(left), Box::new(self.not_test()?));
        }
        Ok(left)
    }

    fn not_test(&mut self) -> Result<Node, ExprError> {
        if self.eat_word("not") {
            return self.nested(|p| Ok(Node::Not(Box::new(p.not_test()?))));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        const CMP: &[(&str, CmpOp)] = &[
            ("<", CmpOp::Lt),
            ("<=", CmpOp::Le),
            (">", CmpOp::Gt),
            (">=", CmpOp::Ge),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
        ];
        let first = self.binary(0)?;
        let mut rest = Vec::new();
        while let Some(&(_, op)) = CMP
            .iter()
            .find(|(s, _)| matches!(self.peek(), Some((Tok::Op(o), _)) if o == s))
        {
            self.pos += 1;
            rest.push((op, self.binary(0)?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(Node::Cmp(Box::new(first), rest))
    }

    /// Binary operators by Python's precedence, lowest first.
    fn binary(&mut self, level: usize) -> Result<Node, ExprError> {
        const LEVELS: &[&[(&str, BinOp)]] = &[
            &[("|", BinOp::BitOr)],
            &[("^", BinOp::BitXor)],
            &[("&", BinOp::BitAnd)],
            &[("<<", BinOp::Shl), (">>", BinOp::Shr)],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[
                ("*", BinOp::Mul),
                ("/", BinOp::Div),
                ("//", BinOp::FloorDiv),
                ("%", BinOp::Mod),
            ],
        ];
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        while let Some(&(_, op)) = ops
            .iter()
            .find(|(s, _)| matches!(self.peek(), Some((Tok::Op(o), _)) if o == s))
        {
            self.pos += 1;
            left = Node::Bin(op, Box::new(left), Box::new(self.binary(level + 1)?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.eat_op("-") {
            return self.nested(|p| Ok(Node::Neg(Box::new(p.unary()?))));
        }
        if self.eat_op("+") {
            return self.nested(|p| p.unary());
        }
        if self.eat_op("~") {
            return self.nested(|p| Ok(Node::Invert(Box::new(p.unary()?))));
        }
        self.power()
    }

    /// `atom ['**' unary]`: right-associative, binds tighter than unary minus
    /// on its left (`-2**2` is -4).
    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.atom()?;
        if self.eat_op("**") {
            let exp = self.nested(|p| p.unary())?;
            return Ok(Node::Bin(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, ExprError> {
        let at = self.at();
        let Some((tok, _)) = self.peek() else {
            return Err(self.error_at("unexpected end of the expression", at));
        };
        match tok.clone() {
            Tok::Num(v) => {
                self.pos += 1;
                Ok(Node::Num(v))
            }
            Tok::Op("(") => {
                self.pos += 1;
                let inner = self.test()?;
                self.expect_op(")")?;
                Ok(inner)
            }
            Tok::Name(name) => {
                self.pos += 1;
                if self.eat_op("(") {
                    return self.call(&name, at);
                }
                match VARS.iter().find(|(n, _)| *n == name) {
                    Some(&(_, var)) => Ok(Node::Var(var)),
                    None => Err(self.error_at(
                        &format!(
                            "unknown name '{name}' (known: ban.Time, ban.Count, banFactor, math.e, math.pi)"
                        ),
                        at,
                    )),
                }
            }
            Tok::Op(op) => Err(self.error_at(&format!("unexpected '{op}'"), at)),
        }
    }

    fn call(&mut self, name: &str, at: usize) -> Result<Node, ExprError> {
        let Some(&(_, func, min, max)) = FUNCS.iter().find(|(n, ..)| *n == name) else {
            let known: Vec<&str> = FUNCS.iter().map(|(n, ..)| *n).collect();
            return Err(self.error_at(
                &format!("unknown function '{name}' (known: {})", known.join(", ")),
                at,
            ));
        };
        let mut args = Vec::new();
        if !self.eat_op(")") {
            loop {
                args.push(self.test()?);
                if self.eat_op(")") {
                    break;
                }
                self.expect_op(",")?;
            }
        }
        if args.len() < min || args.len() > max {
            return Err(self.error_at(&format!("wrong number of arguments to '{name}'"), at));
        }
        Ok(Node::Call(func, args))
    }
}

fn eval(node: &Node, env: &Env) -> Result<Value, ExprError> {
    Ok(match node {
        Node::Num(v) => *v,
        Node::Var(Var::Time) => env.time,
        Node::Var(Var::Count) => Value::Int(env.count),
        Node::Var(Var::Factor) => env.factor,
        Node::Var(Var::Int(i)) => Value::Int(*i),
        Node::Var(Var::Float(f)) => Value::Float(*f),
        Node::Neg(x) => match eval(x, env)? {
            Value::Int(i) => Value::from_i128(-(i as i128)),
            Value::Float(f) => Value::Float(-f),
        },
        Node::Invert(x) => Value::Int(!int_only(eval(x, env)?, "~")?),
        Node::Not(x) => Value::from_bool(!eval(x, env)?.truthy()),
        Node::Bin(op, a, b) => binary(*op, eval(a, env)?, eval(b, env)?)?,
        Node::Cmp(first, rest) => {
            let mut left = eval(first, env)?;
            for (op, node) in rest {
                let right = eval(node, env)?;
                if !compare(*op, left, right) {
                    return Ok(Value::from_bool(false));
                }
                left = right;
            }
            Value::from_bool(true)
        }
        Node::And(a, b) => {
            let a = eval(a, env)?;
            if a.truthy() {
                eval(b, env)?
            } else {
                a
            }
        }
        Node::Or(a, b) => {
            let a = eval(a, env)?;
            if a.truthy() {
                a
            } else {
                eval(b, env)?
            }
        }
        Node::If { cond, then, other } => {
            if eval(cond, env)?.truthy() {
                eval(then, env)?
            } else {
                eval(other, env)?
            }
        }
        Node::Call(func, args) => {
            let args = args
                .iter()
                .map(|a| eval(a, env))
                .collect::<Result<Vec<_>, _>>()?;
            call(*func, &args)?
        }
    })
}

fn int_only(v: Value, op: &str) -> Result<i64, ExprError> {
    match v {
        Value::Int(i) => Ok(i),
        Value::Float(_) => eval_err(format!("unsupported operand type float for '{op}'")),
    }
}

/// A float result; like Python, overflow of `math` functions is an error.
fn finite(f: f64, what: &str) -> Result<Value, ExprError> {
    if f.is_finite() {
        Ok(Value::Float(f))
    } else {
        eval_err(format!("math range error in {what}"))
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, ExprError> {
    use Value::{Float, Int};
    if let (Int(x), Int(y)) = (a, b) {
        let (x, y) = (x as i128, y as i128);
        return Ok(match op {
            BinOp::Add => Value::from_i128(x + y),
            BinOp::Sub => Value::from_i128(x - y),
            BinOp::Mul => x
                .checked_mul(y)
                .map_or(Float(x as f64 * y as f64), Value::from_i128),
            BinOp::Div if y == 0 => return eval_err("division by zero"),
            BinOp::Div => Float(x as f64 / y as f64),
            BinOp::FloorDiv | BinOp::Mod if y == 0 => {
                return eval_err("integer division or modulo by zero")
            }
            BinOp::FloorDiv => {
                Value::from_i128(x.div_euclid(y) - i128::from(y < 0 && x.rem_euclid(y) != 0))
            }
            BinOp::Mod => Value::from_i128(
                x - y * (x.div_euclid(y) - i128::from(y < 0 && x.rem_euclid(y) != 0)),
            ),
            BinOp::Pow if y < 0 => return binary(op, Float(x as f64), Float(y as f64)),
            BinOp::Pow => match u32::try_from(y).ok().and_then(|e| x.checked_pow(e)) {
                Some(p) => Value::from_i128(p),
                None => finite((x as f64).powf(y as f64), "**")?,
            },
            BinOp::Shl | BinOp::Shr if y < 0 => return eval_err("negative shift count"),
            BinOp::Shl => match u32::try_from(y)
                .ok()
                .filter(|s| *s < 127)
                .and_then(|s| x.checked_mul(1 << s))
            {
                Some(v) => Value::from_i128(v),
                None => finite(x as f64 * 2f64.powf(y as f64), "<<")?,
            },
            BinOp::Shr => Value::from_i128(x >> y.min(127)),
            BinOp::BitAnd => Value::from_i128(x & y),
            BinOp::BitOr => Value::from_i128(x | y),
            BinOp::BitXor => Value::from_i128(x ^ y),
        });
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    Ok(match op {
        BinOp::Add => Float(x + y),
        BinOp::Sub => Float(x - y),
        BinOp::Mul => Float(x * y),
        BinOp::Div | BinOp::FloorDiv | BinOp::Mod if y == 0.0 => {
            return eval_err("float division by zero")
        }
        BinOp::Div => Float(x / y),
        BinOp::FloorDiv => Float(py_divmod(x, y).0),
        BinOp::Mod => Float(py_divmod(x, y).1),
        BinOp::Pow if x == 0.0 && y < 0.0 => {
            return eval_err("0.0 cannot be raised to a negative power")
        }
        BinOp::Pow if x < 0.0 && y.fract() != 0.0 => {
            return eval_err("negative number raised to a fractional power")
        }
        BinOp::Pow => finite(x.powf(y), "**")?,
        BinOp::Shl | BinOp::Shr | BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => {
            return eval_err("unsupported operand type float for a bit operator")
        }
    })
}

/// CPython's float `divmod` (`y` is not zero): the remainder has the sign of
/// the divisor, the quotient is floored and corrected for rounding.
fn py_divmod(x: f64, y: f64) -> (f64, f64) {
    let mut m = x % y;
    let mut div = (x - m) / y;
    if m != 0.0 {
        if (y < 0.0) != (m < 0.0) {
            m += y;
            div -= 1.0;
        }
    } else {
        m = 0f64.copysign(y);
    }
    if div == 0.0 {
        return (0f64.copysign(x / y), m);
    }
    let mut q = div.floor();
    if div - q > 0.5 {
        q += 1.0;
    }
    (q, m)
}

fn compare(op: CmpOp, a: Value, b: Value) -> bool {
    let ord = match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(&y)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    };
    use std::cmp::Ordering::*;
    match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Lt, Some(o)) => o == Less,
        (CmpOp::Le, Some(o)) => o != Greater,
        (CmpOp::Gt, Some(o)) => o == Greater,
        (CmpOp::Ge, Some(o)) => o != Less,
        (CmpOp::Eq, Some(o)) => o == Equal,
        (CmpOp::Ne, Some(o)) => o != Equal,
    }
}

fn to_int(f: f64, what: &str) -> Result<Value, ExprError> {
    if !f.is_finite() {
        return eval_err(format!("cannot convert {f} to an integer in {what}"));
    }
    Ok(Value::from_i128(f as i128))
}

fn call(func: Func, args: &[Value]) -> Result<Value, ExprError> {
    let x = args[0];
    let f = x.as_f64();
    match func {
        Func::Exp => finite(f.exp(), "math.exp"),
        Func::Pow => {
            let y = args[1].as_f64();
            if (f == 0.0 && y < 0.0) || (f < 0.0 && y.fract() != 0.0) {
                return eval_err("math domain error in math.pow");
            }
            finite(f.powf(y), "math.pow")
        }
        Func::Log | Func::Log2 | Func::Log10 | Func::Sqrt
            if f < 0.0 || (f == 0.0 && func != Func::Sqrt) =>
        {
            eval_err("math domain error")
        }
        Func::Log => match args.get(1) {
            None => Ok(Value::Float(f.ln())),
            Some(base) if base.as_f64() > 0.0 && base.as_f64() != 1.0 => {
                Ok(Value::Float(f.ln() / base.as_f64().ln()))
            }
            Some(_) => eval_err("math domain error in math.log"),
        },
        Func::Log2 => Ok(Value::Float(f.log2())),
        Func::Log10 => Ok(Value::Float(f.log10())),
        Func::Sqrt => Ok(Value::Float(f.sqrt())),
        Func::Floor => match x {
            Value::Int(_) => Ok(x),
            Value::Float(f) => to_int(f.floor(), "math.floor"),
        },
        Func::Ceil => match x {
            Value::Int(_) => Ok(x),
            Value::Float(f) => to_int(f.ceil(), "math.ceil"),
        },
        Func::Fabs => Ok(Value::Float(f.abs())),
        Func::Min | Func::Max => {
            // Python keeps the first of equal values, so only a strictly
            // better value replaces the current one.
            let better = |a: Value, b: Value| {
                if func == Func::Min {
                    compare(CmpOp::Lt, b, a)
                } else {
                    compare(CmpOp::Gt, b, a)
                }
            };
            Ok(args[1..]
                .iter()
                .fold(x, |acc, v| if better(acc, *v) { *v } else { acc }))
        }
        Func::Abs => Ok(match x {
            Value::Int(i) => Value::from_i128((i as i128).abs()),
            Value::Float(f) => Value::Float(f.abs()),
        }),
        Func::Float => Ok(Value::Float(f)),
        Func::Int => match x {
            Value::Int(_) => Ok(x),
            Value::Float(f) => to_int(f.trunc(), "int()"),
        },
        Func::Round => match x {
            Value::Int(_) => Ok(x),
            Value::Float(f) => to_int(f.round_ties_even(), "round()"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(time: i64, count: i64) -> Env {
        Env {
            time: Value::Int(time),
            count,
            factor: Value::Int(1),
        }
    }

    fn ev(src: &str) -> Value {
        Expr::parse(src).unwrap().eval(&env(600, 3)).unwrap()
    }

    #[test]
    fn python_arithmetic() {
        assert_eq!(ev("7 / 2"), Value::Float(3.5));
        assert_eq!(ev("7 // 2"), Value::Int(3));
        assert_eq!(ev("-7 // 2"), Value::Int(-4));
        assert_eq!(ev("-7 % 3"), Value::Int(2));
        assert_eq!(ev("7 % -3"), Value::Int(-2));
        assert_eq!(ev("-7.5 % 2"), Value::Float(0.5));
        assert_eq!(ev("-2 ** 2"), Value::Int(-4));
        assert_eq!(ev("2 ** 3 ** 2"), Value::Int(512));
        assert_eq!(ev("2 ** -1"), Value::Float(0.5));
        assert_eq!(ev("1 << 10"), Value::Int(1024));
        assert_eq!(ev("1 + 2 * 3 - 4"), Value::Int(3));
        assert_eq!(ev("(1 + 2) * 3"), Value::Int(9));
        assert_eq!(ev("1 < 2 < 3"), Value::Int(1));
        assert_eq!(ev("3 > 2 > 2"), Value::Int(0));
        assert_eq!(ev("0 or 5"), Value::Int(5));
        assert_eq!(ev("2 and 0"), Value::Int(0));
        assert_eq!(ev("not 0"), Value::Int(1));
        assert_eq!(ev("1 if 0 else 2"), Value::Int(2));
        assert_eq!(ev("True + True"), Value::Int(2));
        assert_eq!(ev("1_000 + 0x10 + 1e3"), Value::Float(2016.0));
        assert_eq!(ev("round(2.5) + round(3.5)"), Value::Int(6));
        assert_eq!(ev("int(-2.7)"), Value::Int(-2));
        assert_eq!(ev("max(1, 2.0, 2)"), Value::Float(2.0));
        assert_eq!(ev("math.floor(2.5)"), Value::Int(2));
        assert_eq!(ev("1 << 70"), Value::Float(2f64.powi(70)));
    }

    #[test]
    fn fail2ban_names() {
        let default = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";
        assert_eq!(ev(default), Value::Int(600 * 8));
        let e =
            Expr::parse("ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)")
                .unwrap();
        let v = e
            .eval(&Env {
                time: Value::Int(600),
                count: 1,
                factor: Value::Float(2.0 / 2.885385),
            })
            .unwrap();
        assert!((v.as_f64() - 1200.0).abs() < 0.01, "{v:?}");
    }

    #[test]
    fn config_errors_are_clear() {
        let e = Expr::parse("ban.Time * os.system(1)").unwrap_err();
        assert!(
            e.to_string().contains("unknown function 'os.system'"),
            "{e}"
        );
        let e = Expr::parse("ban.Time +").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected end of the expression at column 11"
        );
        let e = Expr::parse("__import__").unwrap_err();
        assert!(
            e.to_string().starts_with("unknown name '__import__'"),
            "{e}"
        );
        assert!(Expr::parse("1 if 2").is_err());
        assert!(Expr::parse("min(1)").is_err());
        assert!(Expr::parse("1 2").is_err());
        assert!(Expr::parse("ban.Time; 1").is_err());
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(Expr::parse(&deep)
            .unwrap_err()
            .to_string()
            .contains("nested too deeply"));
        let unary = format!("{}1", "-".repeat(500));
        assert!(Expr::parse(&unary).is_err());
    }

    #[test]
    fn runtime_errors_not_panics() {
        for src in [
            "1/0",
            "1//0",
            "1%0",
            "1.0/0",
            "math.exp(1000)",
            "math.log(0)",
            "1 << -1",
            "1.5 << 1",
            "int(math.exp(700) * 1e10)",
            "0.0 ** -1",
            "(-8) ** 0.5",
            "2 ** 5000",
        ] {
            assert!(
                Expr::parse(src).unwrap().eval(&env(600, 0)).is_err(),
                "{src}"
            );
        }
        assert_eq!(
            ev("9223372036854775807 + 1"),
            Value::Float(9223372036854775808.0)
        );
    }
}
