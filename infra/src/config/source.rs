//! Where configuration values come from: any lookup of variables (the environment, or a
//! map in tests). Every section parses its values through these few readers, so a
//! variable is checked the same way wherever it is read.

use std::str::FromStr;
use std::time::Duration;

use super::{invalid, parse_duration, ConfigError, Secret};

pub(super) struct Source<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Source<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// A variable's value; an empty one counts as unset, as shells and `.env` files
    /// write "unset" that way.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn get_or(&self, name: &str, default: impl Into<String>) -> String {
        self.get(name).unwrap_or_else(|| default.into())
    }

    /// `NAME`, or the contents of the file named by `NAME_FILE` (not both): orchestrators
    /// mount secrets as files.
    pub fn secret(&self, name: &str) -> Result<Option<Secret>, ConfigError> {
        let file_name = format!("{name}_FILE");
        match (self.get(name), self.get(&file_name)) {
            (Some(_), Some(_)) => Err(invalid(
                name,
                format!("set either {name} or {file_name}, not both"),
            )),
            (Some(v), None) => Ok(Some(Secret::new(v))),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| invalid(&file_name, format!("cannot read {path}: {e}")))?;
                Ok(Some(Secret::new(text.trim_end_matches(['\n', '\r']))))
            }
            (None, None) => Ok(None),
        }
    }

    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(name, format!("'{v}' is not a valid number"))),
        }
    }

    /// A count or size where zero would disable what it limits.
    pub fn positive<T: FromStr + PartialEq + From<u8>>(
        &self,
        name: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        let value = self.number(name, default)?;
        if value == T::from(0) {
            return Err(invalid(name, "must be at least 1"));
        }
        Ok(value)
    }

    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_duration(&v).map_err(|m| invalid(name, m)),
        }
    }

    /// A URL, when set, must use one of `schemes` (each given with its `://` or `:`).
    pub fn url(&self, name: &str, schemes: &[&str]) -> Result<Option<String>, ConfigError> {
        self.get(name)
            .map(|url| with_scheme(name, url, schemes))
            .transpose()
    }

    /// One of a few named values.
    pub fn choice<T: Copy>(
        &self,
        name: &str,
        default: &str,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let value = self.get_or(name, default);
        match choices.iter().find(|(word, _)| *word == value) {
            Some((_, choice)) => Ok(*choice),
            None => {
                let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
                Err(invalid(
                    name,
                    format!("'{value}' is not one of {}", words.join(", ")),
                ))
            }
        }
    }
}

/// `url` if it uses one of `schemes`.
pub(super) fn with_scheme(
    name: &str,
    url: String,
    schemes: &[&str],
) -> Result<String, ConfigError> {
    if schemes.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(url);
    }
    Err(invalid(
        name,
        format!("must start with {}", one_of(schemes, "or")),
    ))
}

/// Two variables that only make sense together: both set, or neither.
pub(super) fn both_or_neither<A, B>(
    (first, a): (&str, Option<A>),
    (second, b): (&str, Option<B>),
) -> Result<Option<(A, B)>, ConfigError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(second, format!("is required with {first}"))),
        (None, Some(_)) => Err(invalid(first, format!("is required with {second}"))),
    }
}

fn one_of(words: &[&str], last: &str) -> String {
    match words {
        [] => String::new(),
        [only] => only.to_string(),
        [rest @ .., final_word] => format!("{} {last} {final_word}", rest.join(", ")),
    }
}
