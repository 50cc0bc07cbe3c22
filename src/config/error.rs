//! The one error type of the configuration reader: what went wrong and where
//! (file, line, section, key), so that a broken tree is fixed without guessing.

use std::fmt;
use std::sync::Arc;

/// Where a raw value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: Arc<str>,
    pub line: u32,
}

/// A configuration error. Every field that is known is filled in (read them
/// through `Deref` to [`ErrorDetails`]: `err.file`, `err.key`, ...);
/// `Display` prints `file:line: [section] key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(Box<ErrorDetails>);

/// What a [`ConfigError`] knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetails {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub section: Option<String>,
    pub key: Option<String>,
    pub message: String,
    /// Fail2ban's own wording when it skips only this jail (`Unable to read the
    /// filter 'x'`); such errors become `config-error` commands in the dump.
    pub(crate) jail_skip: Option<String>,
}

impl std::ops::Deref for ConfigError {
    type Target = ErrorDetails;
    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(Box::new(ErrorDetails {
            file: None,
            line: None,
            section: None,
            key: None,
            message: message.into(),
            jail_skip: None,
        }))
    }

    pub(crate) fn at(mut self, origin: Option<&Origin>) -> ConfigError {
        if let Some(o) = origin {
            if self.0.file.is_none() {
                self.0.file = Some(o.file.to_string());
                self.0.line = (o.line > 0).then_some(o.line);
            }
        }
        self
    }

    pub(crate) fn in_file(mut self, file: &str) -> ConfigError {
        if self.0.file.is_none() {
            self.0.file = Some(file.to_string());
        }
        self
    }

    pub(crate) fn line(mut self, line: u32) -> ConfigError {
        self.0.line = Some(line);
        self
    }

    pub(crate) fn section(mut self, section: &str) -> ConfigError {
        if self.0.section.is_none() {
            self.0.section = Some(section.to_string());
        }
        self
    }

    pub(crate) fn key(mut self, key: &str) -> ConfigError {
        if self.0.key.is_none() {
            self.0.key = Some(key.to_string());
        }
        self
    }

    pub(crate) fn jail_skip(mut self, f2b_message: String) -> ConfigError {
        self.0.jail_skip = Some(f2b_message);
        self
    }

    /// True when Fail2ban would skip only the jail and go on with the others.
    #[cfg(test)]
    pub fn skips_jail(&self) -> bool {
        self.jail_skip.is_some()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(section) = &self.section {
            write!(f, "[{section}] ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}
