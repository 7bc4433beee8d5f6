//! Small checks shared by the aggregates' commands.

use crate::rejection::FieldError;

/// Trims `value` and checks it is non-empty and at most `max` characters long.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    optional_text(field, trimmed, max)
}

/// Trims `value` and checks it is at most `max` characters long; control characters are
/// refused because they end up in mails, CSV exports and logs.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a dotted domain, no spaces.
/// Deliverability is proven by sending, not by parsing. Returns the address in lower case,
/// which is the form uniqueness is decided on.
pub fn email(field: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let invalid = || FieldError::new(field, "must be an e-mail address like name@example.com");
    // 254 characters, as the API document can say (JSON Schema counts characters).
    if value.chars().count() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(invalid());
    }
    Ok(value.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_lower_cased_and_trimmed() {
        assert_eq!(
            email("email", " Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@c.de",
            "a@b@c.de",
            "a@.de",
            "a@b..de",
        ] {
            assert!(email("email", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn text_limits_are_enforced() {
        assert!(required_text("name", "   ", 10).is_err());
        assert!(required_text("name", "abcdefghijk", 10).is_err());
        assert!(optional_text("name", "a\u{0007}b", 10).is_err());
        assert_eq!(required_text("name", "  Ana ", 10).unwrap(), "Ana");
    }
}
