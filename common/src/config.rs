//! Settings read from environment variables.
//!
//! Every service reads its whole configuration once at start. A missing or malformed value stops
//! the process with a [`ConfigError`] that names the variable and the expected value.

use std::fmt::Display;
use std::str::FromStr;

/// A configuration value that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var} {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// The problem with the value and the expected value.
    pub problem: String,
}

impl ConfigError {
    pub fn new(var: &str, problem: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Source of variables: the process environment in services, a map in unit tests.
pub trait Env {
    fn get(&self, var: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok()
    }
}

impl Env for std::collections::HashMap<&str, &str> {
    fn get(&self, var: &str) -> Option<String> {
        std::collections::HashMap::get(self, var).map(|v| (*v).to_owned())
    }
}

/// Returns the variable's value, treating an empty or blank value as unset.
pub fn optional(env: &dyn Env, var: &str) -> Option<String> {
    env.get(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Returns the variable's value or an error saying that it must be set.
pub fn required(env: &dyn Env, var: &str, meaning: &str) -> Result<String, ConfigError> {
    optional(env, var)
        .ok_or_else(|| ConfigError::new(var, format!("is not set: set it to {meaning}")))
}

/// Parses the variable if set, or returns `default`.
pub fn parsed_or<T>(env: &dyn Env, var: &str, default: T, expected: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match optional(env, var) {
        None => Ok(default),
        Some(raw) => parse(var, &raw, expected),
    }
}

/// Parses the variable if set.
pub fn parsed_optional<T>(
    env: &dyn Env,
    var: &str,
    expected: &str,
) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    optional(env, var)
        .map(|raw| parse(var, &raw, expected))
        .transpose()
}

fn parse<T>(var: &str, raw: &str, expected: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    raw.parse().map_err(|e| {
        ConfigError::new(
            var,
            format!("is {raw:?}, which is invalid ({e}): expected {expected}"),
        )
    })
}

/// Checks that a parsed number lies in `min..=max`.
pub fn in_range<T>(var: &str, value: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: PartialOrd + Display + Copy,
{
    if value < min || value > max {
        return Err(ConfigError::new(
            var,
            format!("is {value}, which is out of range: expected {min} to {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn blank_value_counts_as_unset() {
        let env = HashMap::from([("X", "  ")]);
        assert_eq!(optional(&env, "X"), None);
    }

    #[test]
    fn required_names_the_variable() {
        let env: HashMap<&str, &str> = HashMap::new();
        let err = required(&env, "DB_HOST", "the database host").unwrap_err();
        assert_eq!(err.var, "DB_HOST");
        assert!(err.to_string().contains("DB_HOST is not set"), "{err}");
    }

    #[test]
    fn malformed_number_names_variable_and_value() {
        let env = HashMap::from([("DB_PORT", "fivefour")]);
        let err = parsed_or::<u16>(&env, "DB_PORT", 5432, "a TCP port").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("DB_PORT"), "{text}");
        assert!(text.contains("\"fivefour\""), "{text}");
        assert!(text.contains("a TCP port"), "{text}");
    }

    #[test]
    fn range_check_rejects_out_of_range() {
        assert!(in_range("N", 0u32, 1, 10).is_err());
        assert_eq!(in_range("N", 5u32, 1, 10).unwrap(), 5);
    }
}
