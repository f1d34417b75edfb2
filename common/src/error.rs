//! Error text for logs and job rows.

use std::error::Error;

/// Formats an error followed by its sources, as `outer: inner: innermost`.
///
/// Many libraries print only their own layer (tokio-postgres prints "db error", the AWS SDK
/// "dispatch failure") and keep the cause in `source()`. A source whose text is already part of
/// the message is skipped, because some errors repeat their source in their own text.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        let mut error: Option<Box<Layer>> = None;
        for text in texts.iter().rev() {
            error = Some(Box::new(Layer {
                text,
                source: error,
            }));
        }
        *error.unwrap()
    }

    #[test]
    fn chain_joins_every_source() {
        let error = layers(&[
            "error connecting to server",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(
            chain(&error),
            "error connecting to server: Connection refused (os error 111)"
        );
    }

    #[test]
    fn chain_skips_repeated_source() {
        let error = layers(&["pool failed: timed out", "timed out"]);
        assert_eq!(chain(&error), "pool failed: timed out");
    }

    #[test]
    fn chain_of_single_error_is_its_text() {
        assert_eq!(chain(&layers(&["db error"])), "db error");
    }
}
