//! Topic rules (placeholder until the topic module lands).

/// Topic error.
#[derive(Debug, thiserror::Error)]
#[error("invalid topic")]
pub struct TopicError;

/// Validates a topic name.
pub fn validate_topic_name(t: &str) -> Result<(), TopicError> {
    if t.is_empty() || t.contains(['+', '#', '\0']) {
        return Err(TopicError);
    }
    Ok(())
}

/// Validates a topic filter.
pub fn validate_topic_filter(t: &str) -> Result<(), TopicError> {
    if t.is_empty() || t.contains('\0') {
        return Err(TopicError);
    }
    Ok(())
}
