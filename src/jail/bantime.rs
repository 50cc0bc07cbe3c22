//! `bantime.increment`: longer bans for addresses banned before
//! (`bantime.formula`, `.factor`, `.multipliers`, `.maxtime`, `.rndtime`,
//! `.overalljails`), and how much faster the failures of such a known
//! offender count.

use super::expr::{Env, Expr, ExprError, Value};

/// The `bantime.*` options of a jail.
#[derive(Debug, Clone, PartialEq)]
pub struct BanTimeIncrement {
    /// `bantime.increment`.
    pub enabled: bool,
    /// `bantime.overalljails`: count bans in every jail, not just this one.
    pub overalljails: bool,
    /// `bantime.maxtime` in seconds.
    pub maxtime: Option<f64>,
    /// `bantime.rndtime` in seconds: up to this much is added at random.
    pub rndtime: Option<f64>,
    factor: Value,
    /// None: `ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor`.
    formula: Option<Expr>,
    /// Replace the formula when set: indexed by the previous ban count, the
    /// last one repeating.
    multipliers: Vec<i64>,
}

/// A `bantime.*` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bantime.{option} = {value:?}: {reason}")]
pub struct IncrementError {
    pub option: &'static str,
    pub value: String,
    pub reason: String,
}

impl Default for BanTimeIncrement {
    fn default() -> Self {
        BanTimeIncrement {
            enabled: false,
            overalljails: false,
            maxtime: None,
            rndtime: None,
            factor: Value::Int(1),
            formula: None,
            multipliers: Vec::new(),
        }
    }
}

impl BanTimeIncrement {
    /// `bantime.factor`: a number (Fail2ban evaluates it as an expression).
    pub fn set_factor(&mut self, value: &str) -> Result<(), IncrementError> {
        let err = |reason: String| IncrementError {
            option: "factor",
            value: value.into(),
            reason,
        };
        let expr = Expr::parse(value).map_err(|e| err(e.to_string()))?;
        let env = Env {
            time: Value::Int(0),
            count: 0,
            factor: Value::Int(1),
        };
        self.factor = expr.eval(&env).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// `bantime.formula`; an empty value restores the default formula.
    pub fn set_formula(&mut self, value: &str) -> Result<(), IncrementError> {
        self.formula = match value.trim() {
            "" => None,
            v => Some(Expr::parse(v).map_err(|e| IncrementError {
                option: "formula",
                value: value.into(),
                reason: e.to_string(),
            })?),
        };
        Ok(())
    }

    /// `bantime.multipliers`: whole numbers separated by spaces; an empty
    /// value returns to the formula.
    pub fn set_multipliers(&mut self, value: &str) -> Result<(), IncrementError> {
        self.multipliers = value
            .split_whitespace()
            .map(|m| {
                m.parse::<i64>().map_err(|_| IncrementError {
                    option: "multipliers",
                    value: value.into(),
                    reason: format!("{m:?} is not a whole number"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// The ban time for an address banned `count` times before, from the
    /// jail's `base` ban time; `random` in [0, 1) scales `rndtime`. Errors
    /// come from the formula (division by zero, overflow).
    pub fn ban_time(&self, base: f64, count: u32, random: f64) -> Result<f64, ExprError> {
        let mut t = if let Some(&last) = self.multipliers.last() {
            let m = self
                .multipliers
                .get(count as usize)
                .copied()
                .unwrap_or(last);
            base * self.factor.as_f64() * m as f64
        } else if let Some(f) = &self.formula {
            let time = if base.fract() == 0.0 {
                Value::Int(base as i64)
            } else {
                Value::Float(base)
            };
            let env = Env {
                time,
                count: i64::from(count),
                factor: self.factor,
            };
            base.max(f.eval(&env)?.as_f64())
        } else {
            let grown = base * f64::from(1u32 << count.min(20));
            base.max(grown * self.factor.as_f64())
        };
        if let Some(max) = self.maxtime {
            t = t.min(max);
        }
        if let Some(rnd) = self.rndtime {
            t += random * rnd;
        }
        if !t.is_finite() {
            return Err(ExprError {
                message: format!("ban time {t} is not a number of seconds"),
                column: None,
            });
        }
        Ok(t)
    }

    /// The longest ban this jail can give (`-1`: permanent), which bounds the
    /// ban times restored from the store.
    pub fn max_ban_time(&self, bantime: f64) -> f64 {
        if self.enabled {
            self.maxtime.unwrap_or(-1.0)
        } else {
            bantime
        }
    }
}

/// How much one failure of an address banned `ban_count` times before counts:
/// 2, 3, 5, 9, ... (`2^n/2 + 1`), never more than `maxretry`. Stores only
/// hold counts from 1 up; 0 (never banned) counts 1.
pub(crate) fn known_offender_retry(ban_count: u32, maxretry: u32) -> u32 {
    if ban_count == 0 {
        return 1;
    }
    ((1u32 << ban_count.min(20)) / 2 + 1).min(maxretry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_formula_doubles_up_to_2_pow_20() {
        let inc = BanTimeIncrement::default();
        let got: Vec<f64> = (0..=22)
            .map(|c| inc.ban_time(600.0, c, 0.0).unwrap())
            .collect();
        assert_eq!(&got[..4], &[600.0, 1200.0, 2400.0, 4800.0]);
        assert_eq!(got[20], 600.0 * 1048576.0);
        assert_eq!(got[22], got[20]);
    }

    #[test]
    fn multipliers_replace_the_formula_and_repeat_the_last() {
        let mut inc = BanTimeIncrement::default();
        inc.set_multipliers("1 5 30").unwrap();
        inc.set_factor("2").unwrap();
        let got: Vec<f64> = (0..5)
            .map(|c| inc.ban_time(60.0, c, 0.0).unwrap())
            .collect();
        assert_eq!(got, [120.0, 600.0, 3600.0, 3600.0, 3600.0]);
        // No floor at the base time with multipliers, as in Fail2ban.
        inc.set_multipliers("0 1").unwrap();
        assert_eq!(inc.ban_time(60.0, 0, 0.0).unwrap(), 0.0);
        inc.set_multipliers("").unwrap();
        assert_eq!(inc.ban_time(60.0, 1, 0.0).unwrap(), 240.0);
    }

    #[test]
    fn maxtime_caps_then_rndtime_adds() {
        let mut inc = BanTimeIncrement {
            maxtime: Some(3000.0),
            rndtime: Some(100.0),
            ..Default::default()
        };
        assert_eq!(inc.ban_time(600.0, 10, 0.0).unwrap(), 3000.0);
        assert_eq!(inc.ban_time(600.0, 10, 0.5).unwrap(), 3050.0);
        inc.rndtime = None;
        assert_eq!(inc.ban_time(600.0, 2, 0.0).unwrap(), 2400.0);
    }

    #[test]
    fn formula_is_floored_at_the_base_time() {
        let mut inc = BanTimeIncrement::default();
        inc.set_formula("ban.Time / 10").unwrap();
        assert_eq!(inc.ban_time(600.0, 3, 0.0).unwrap(), 600.0);
        inc.set_formula("ban.Time * ban.Count").unwrap();
        assert_eq!(inc.ban_time(600.0, 3, 0.0).unwrap(), 1800.0);
        inc.set_formula("1/0").unwrap();
        assert!(inc.ban_time(600.0, 3, 0.0).is_err());
    }

    #[test]
    fn bad_options_name_themselves() {
        let mut inc = BanTimeIncrement::default();
        let e = inc.set_multipliers("1 2 x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bantime.multipliers = \"1 2 x\": \"x\" is not a whole number"
        );
        let e = inc.set_formula("ban.Time *").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bantime.formula = \"ban.Time *\": "),
            "{e}"
        );
        assert!(inc.set_factor("os").is_err());
    }

    #[test]
    fn known_offenders_count_faster() {
        let got: Vec<u32> = (0..6).map(|n| known_offender_retry(n, 100)).collect();
        assert_eq!(got, [1, 2, 3, 5, 9, 17]);
        assert_eq!(known_offender_retry(40, 1 << 30), (1 << 19) + 1);
        assert_eq!(known_offender_retry(5, 3), 3);
    }
}
