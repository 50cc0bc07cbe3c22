//! Time values as Fail2ban reads them (`str2seconds`): a number of seconds or
//! an arithmetic expression of numbers with units, `600`, `10m`, `1h`, `1d12h`
//! (`1d 12h`, parts without an operator are added), `1hour+30min`, `1w`,
//! `1mo` (a month is a year / 12), `1y` (365.25 days), `-1`, `1.5h`.
//!
//! Units (case-insensitive, after a digit or a space): `d`/`dd`/`da`/`day(s)`,
//! `w`/`ww`/`we`/`wee`/`week(s)`, `mo`/`mon`/`month(s)`,
//! `y`/`yy`/`ye`/`yea`/`year(s)`, `s`/`ss`/`se`/`sec`/`second(s)`,
//! `m`/`mm`/`mi`/`min`/`minute(s)`, `h`/`hh`/`ho`/`hou`/`hour(s)`.

use super::error::ConfigError;

const MONTH: &str = "*2629800.0";
const YEAR: &str = "*31557600.0";

/// Unit spellings, longest alternative first, in the order Fail2ban applies them.
const UNITS: [(&[&str], &str); 7] = [
    (&["days", "day", "da", "dd", "d"], "*86400"),
    (&["weeks", "week", "wee", "we", "ww", "w"], "*604800"),
    (&["months", "month", "mon", "mo"], MONTH),
    (&["years", "year", "yea", "ye", "yy", "y"], YEAR),
    (&["seconds", "second", "sec", "se", "ss", "s"], "*1"),
    (&["minutes", "minute", "min", "mi", "mm", "m"], "*60"),
    (&["hours", "hour", "hou", "ho", "hh", "h"], "*3600"),
];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Seconds in a Fail2ban time value.
pub fn parse_time(value: &str) -> Result<f64, ConfigError> {
    let expr = expand_units(value);
    eval(&expr).map_err(|why| {
        ConfigError::new(format!(
            "invalid time value {value:?} ({why}); use seconds or units such as 10m, 1h, 1d12h, 1w"
        ))
    })
}

/// Rewrites units into multiplications (`1d12h` -> `1*86400+12*3600`).
fn expand_units(value: &str) -> String {
    // `1d12h` -> `1d 12h`: a space before a digit that follows a letter.
    let mut s = String::with_capacity(value.len() + 8);
    let mut prev = None;
    for c in value.chars() {
        if c.is_ascii_digit() && prev.is_some_and(|p: char| p.is_ascii_alphabetic()) {
            s.push(' ');
        }
        s.push(c);
        prev = Some(c);
    }
    for (spellings, repl) in UNITS {
        s = replace_unit(&s, spellings, repl);
    }
    // Parts side by side are added: `1*86400 12*3600` -> `1*86400+12*3600`.
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        out.push(chars[i]);
        if chars[i].is_ascii_digit() {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j > i + 1 && j < chars.len() && chars[j].is_ascii_digit() {
                out.push('+');
                out.push(chars[j]);
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn replace_unit(s: &str, spellings: &[&str], repl: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut i = 0;
    'scan: while i < s.len() {
        if prev.is_some_and(|p| p.is_ascii_digit() || p.is_whitespace()) {
            for sp in spellings {
                let end = i + sp.len();
                let fits = s.get(i..end).is_some_and(|w| w.eq_ignore_ascii_case(sp));
                if fits && !s[end..].chars().next().is_some_and(is_word) {
                    out.push_str(repl);
                    prev = s[..end].chars().next_back();
                    i = end;
                    continue 'scan;
                }
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        prev = Some(c);
        i += c.len_utf8();
    }
    out
}

/// Evaluates `+ - * / // % **` and parentheses over numbers, Python style.
fn eval(expr: &str) -> Result<f64, String> {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
    };
    let v = p.sum()?;
    p.space();
    if p.i != p.s.len() {
        return Err(format!("unexpected {:?}", &expr[p.i..]));
    }
    if v.is_finite() {
        Ok(v)
    } else {
        Err("not a finite number".into())
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.space();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        loop {
            if self.eat("+") {
                v += self.product()?;
            } else if self.eat("-") {
                v -= self.product()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        loop {
            if self.eat("*") {
                v *= self.unary()?;
            } else if self.eat("//") {
                let d = self.unary()?;
                v = nonzero(d).map(|d| (v / d).floor())?;
            } else if self.eat("/") {
                let d = self.unary()?;
                v = nonzero(d).map(|d| v / d)?;
            } else if self.eat("%") {
                let d = self.unary()?;
                v = nonzero(d).map(|d| v - d * (v / d).floor())?;
            } else {
                return Ok(v);
            }
        }
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.eat("-") {
            return Ok(-self.unary()?);
        }
        if self.eat("+") {
            return self.unary();
        }
        let base = self.atom()?;
        if self.eat("**") {
            return Ok(base.powf(self.unary()?));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        if self.eat("(") {
            let v = self.sum()?;
            if !self.eat(")") {
                return Err("missing ')'".into());
            }
            return Ok(v);
        }
        self.space();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_digit() || matches!(self.s[self.i], b'.' | b'_'))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
        let ok = !text.is_empty()
            && !text.starts_with('_')
            && !text.ends_with('_')
            && !text.contains("__")
            && !text.contains("._")
            && !text.contains("_.");
        let number = text.replace('_', "");
        match number.parse::<f64>() {
            Ok(v) if ok => Ok(v),
            _ => Err(match text {
                "" => "a number expected".to_string(),
                t => format!("bad number {t:?}"),
            }),
        }
    }
}

fn nonzero(d: f64) -> Result<f64, String> {
    if d == 0.0 {
        Err("division by zero".into())
    } else {
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let cases: [(&str, f64); 16] = [
            ("600", 600.0),
            ("10m", 600.0),
            ("1h", 3600.0),
            ("1d12h", 129600.0),
            ("1d 12h", 129600.0),
            ("1w", 604800.0),
            ("1hour+30min", 5400.0),
            ("0d 1h 30m", 5400.0),
            ("1mo", 2629800.0),
            ("1month", 2629800.0),
            ("1year-6mo", 15778800.0),
            ("6 months", 15778800.0),
            ("-1", -1.0),
            ("1.5h", 5400.0),
            ("180d", 15552000.0),
            ("2 * 10M", 1200.0),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_time(text).unwrap(), secs, "{text}");
        }
        assert_eq!(expand_units("1d12h"), "1*86400+12*3600");
    }

    #[test]
    fn errors() {
        for bad in ["abc", "10x", "1 2 3", "", "1/0", "(1", "1e5"] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.message.contains("invalid time value"), "{bad}: {e}");
        }
    }
}
