//! MQTT topic names and topic filters: validation and matching.
//!
//! A *topic name* is what a PUBLISH carries (`sport/tennis/player1`); it never contains
//! wildcards. A *topic filter* is what a SUBSCRIBE carries (`sport/+/player1`, `sport/#`)
//! and may contain the single-level wildcard `+` and the multi-level wildcard `#`. MQTT 5
//! shared subscriptions (`$share/<ShareName>/<filter>`) are accepted as filters.
//!
//! The rules are those of MQTT 3.1.1 and 5.0 (they agree): sections 1.5.4 (UTF-8 strings),
//! 3.3.2 (topic name), 4.7 (topic names and filters) and 4.8.2 (shared subscriptions).
//!
//! ```
//! use mqttsync::topic::{matches, validate_topic_filter, validate_topic_name, TopicError};
//!
//! assert!(validate_topic_name("sport/tennis/player1").is_ok());
//! assert_eq!(validate_topic_name("sport/+"), Err(TopicError::Wildcard));
//! assert_eq!(validate_topic_filter("sport/tennis#"), Err(TopicError::BadWildcard));
//! assert!(matches("sport/+/player1", "sport/tennis/player1"));
//! assert!(matches("sport/#", "sport"));
//! assert!(!matches("#", "$SYS/broker/uptime"));
//! ```

/// Largest number of bytes in an MQTT UTF-8 encoded string, hence in a topic name or filter
/// (MQTT-1.5.4-1: the length is a two-byte integer).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// The prefix that marks an MQTT 5 shared subscription filter (section 4.8.2).
pub const SHARE_PREFIX: &str = "$share/";

/// Why a topic name or topic filter is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic name or filter is empty: it must be at least one character long
    /// (MQTT-4.7.3-1).
    #[error("topic is empty")]
    Empty,
    /// The topic is longer than 65535 bytes in UTF-8 (MQTT-1.5.4-1).
    #[error("topic is longer than 65535 bytes")]
    TooLong,
    /// A topic name contains a wildcard character `+` or `#` (MQTT-3.3.2-2, MQTT-4.7.1-1).
    #[error("topic name contains a wildcard character ('+' or '#')")]
    Wildcard,
    /// A topic filter uses a wildcard wrongly: `#` not alone in the last level
    /// (MQTT-4.7.1-1) or `+` not alone in its level (MQTT-4.7.1-2).
    #[error("topic filter uses a wildcard in a wrong place")]
    BadWildcard,
    /// The topic contains the null character U+0000 (MQTT-1.5.4-2, MQTT-4.7.3-2).
    #[error("topic contains the null character U+0000")]
    Nul,
    /// A shared subscription (`$share/<ShareName>/<filter>`) has an empty share name, a share
    /// name with `+`, `#` or `/`, or no filter after the share name (MQTT-4.8.2-1,
    /// MQTT-4.8.2-2).
    #[error("invalid shared subscription: expected $share/<ShareName>/<filter>")]
    InvalidShare,
}

/// Checks the rules common to topic names and filters: non-empty, no U+0000, length.
fn check_string(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    if s.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// Checks that `topic` is a valid topic name, as carried by PUBLISH (and by a Will).
///
/// A topic name is at least one character long (MQTT-4.7.3-1), has no wildcard characters
/// `+` or `#` (MQTT-3.3.2-2), no U+0000 (MQTT-1.5.4-2) and is at most 65535 bytes long
/// (MQTT-1.5.4-1). Empty levels (`a//b`, `/a`, `a/`) and spaces are allowed, and topics are
/// case sensitive (section 4.7.3).
pub fn validate_topic_name(topic: &str) -> Result<(), TopicError> {
    check_string(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard);
    }
    Ok(())
}

/// Checks a filter without the shared-subscription prefix.
fn validate_plain_filter(filter: &str) -> Result<(), TopicError> {
    check_string(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            "+" => {}
            // MQTT-4.7.1-1: '#' is alone in its level and that level is the last one.
            "#" if is_last => {}
            _ if level.contains(['+', '#']) => return Err(TopicError::BadWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Splits a shared subscription `$share/<ShareName>/<filter>` into share name and filter.
///
/// Returns `Ok(None)` when `filter` is not a shared subscription (its first level is not
/// exactly `$share`), `Err(InvalidShare)` when it starts with `$share` but has no share name
/// or no filter part.
fn split_share(filter: &str) -> Result<Option<(&str, &str)>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        if filter == "$share" {
            return Err(TopicError::InvalidShare);
        }
        return Ok(None);
    };
    let Some((name, inner)) = rest.split_once('/') else {
        return Err(TopicError::InvalidShare);
    };
    Ok(Some((name, inner)))
}

/// Checks that `filter` is a valid topic filter, as carried by SUBSCRIBE and UNSUBSCRIBE.
///
/// A topic filter is at least one character long (MQTT-4.7.3-1), has no U+0000
/// (MQTT-1.5.4-2) and is at most 65535 bytes long (MQTT-1.5.4-1). The multi-level wildcard
/// `#` stands alone in the last level (MQTT-4.7.1-1); the single-level wildcard `+` stands
/// alone in its level (MQTT-4.7.1-2).
///
/// A filter whose first level is `$share` is an MQTT 5 shared subscription
/// `$share/<ShareName>/<filter>`: the share name is at least one character and has no `/`,
/// `+` or `#` (MQTT-4.8.2-1), and is followed by `/` and a valid filter (MQTT-4.8.2-2).
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_string(filter)?;
    match split_share(filter)? {
        None => validate_plain_filter(filter),
        Some((name, inner)) => {
            if name.is_empty() || name.contains(['+', '#']) {
                return Err(TopicError::InvalidShare);
            }
            if inner.is_empty() {
                return Err(TopicError::InvalidShare);
            }
            validate_plain_filter(inner)
        }
    }
}

/// Returns whether the topic name `topic` matches the topic filter `filter`.
///
/// `+` matches exactly one level (which may be empty); `#` matches the parent level and any
/// number of child levels, so `sport/#` matches `sport`, `sport/` and `sport/tennis/player1`
/// (section 4.7.1). A topic name starting with `$` is not matched by a filter starting with
/// a wildcard: `#` and `+/monitor/Clients` do not match `$SYS/monitor/Clients`
/// (MQTT-4.7.2-1). A shared subscription's `$share/<ShareName>/` prefix is stripped before
/// matching.
///
/// Matching is exact and case sensitive otherwise. Returns `false` (never panics) when
/// `filter` is not a valid topic filter or `topic` is not a valid topic name.
pub fn matches(filter: &str, topic: &str) -> bool {
    if validate_topic_filter(filter).is_err() || validate_topic_name(topic).is_err() {
        return false;
    }
    let filter = match split_share(filter) {
        Ok(Some((_, inner))) => inner,
        Ok(None) => filter,
        Err(_) => return false,
    };
    // MQTT-4.7.2-1: wildcards at the start never match topics beginning with '$'.
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        if filter_level == "#" {
            // Matches the parent level and everything below it, including nothing.
            return true;
        }
        let Some(topic_level) = topic_levels.next() else {
            return false;
        };
        if filter_level != "+" && filter_level != topic_level {
            return false;
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- topic names -----------------------------------------------------------------

    #[test]
    fn name_valid_examples() {
        for t in [
            "sport/tennis/player1",
            "sport",
            "/",
            "//",
            "/finance",
            "finance/",
            "Accounts payable", // MQTT 4.7.3: spaces allowed
            "ACCOUNTS",
            "$SYS/broker/uptime",
            "$share/group/topic", // only a topic name; '$share' has no meaning here
            "ünïcödé/トピック",
        ] {
            assert_eq!(validate_topic_name(t), Ok(()), "{t:?}");
        }
    }

    #[test]
    fn name_empty_is_invalid_mqtt_4_7_3_1() {
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
    }

    #[test]
    fn name_with_wildcards_is_invalid_mqtt_3_3_2_2() {
        for t in ["+", "#", "sport/+", "sport/#", "sport+", "a/b#c", "+/x"] {
            assert_eq!(validate_topic_name(t), Err(TopicError::Wildcard), "{t:?}");
        }
    }

    #[test]
    fn name_with_nul_is_invalid_mqtt_1_5_4_2() {
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::Nul));
        assert_eq!(validate_topic_name("\0"), Err(TopicError::Nul));
    }

    #[test]
    fn name_length_limit_mqtt_1_5_4_1() {
        let max = "a".repeat(MAX_TOPIC_LEN);
        assert_eq!(validate_topic_name(&max), Ok(()));
        let over = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(validate_topic_name(&over), Err(TopicError::TooLong));
        // The limit is in bytes, not characters: 'é' is two bytes in UTF-8.
        let multibyte = "é".repeat(MAX_TOPIC_LEN / 2 + 1);
        assert!(multibyte.chars().count() < MAX_TOPIC_LEN);
        assert_eq!(validate_topic_name(&multibyte), Err(TopicError::TooLong));
    }

    // ---- topic filters ---------------------------------------------------------------

    #[test]
    fn filter_valid_examples_from_spec_4_7_1() {
        for f in [
            "#",
            "sport/tennis/#",
            "sport/tennis/player1/#",
            "+",
            "+/tennis/#",
            "sport/+/player1",
            "sport/+",
            "+/+",
            "/+",
            "$SYS/#",
            "$SYS/monitor/+",
            "/",
            "a//b",
            "+/",
            "/#",
            "+/+/+/#",
            "Accounts payable",
        ] {
            assert_eq!(validate_topic_filter(f), Ok(()), "{f:?}");
        }
    }

    #[test]
    fn filter_hash_must_be_last_and_alone_mqtt_4_7_1_1() {
        for f in [
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "#/",
            "#/a",
            "a/##",
            "a#",
            "#a",
            "a/b#/c",
        ] {
            assert_eq!(
                validate_topic_filter(f),
                Err(TopicError::BadWildcard),
                "{f:?}"
            );
        }
    }

    #[test]
    fn filter_plus_must_be_alone_in_level_mqtt_4_7_1_2() {
        for f in [
            "sport+",
            "sport/+tennis",
            "+a",
            "a+/b",
            "++",
            "a/++/b",
            "+#",
        ] {
            assert_eq!(
                validate_topic_filter(f),
                Err(TopicError::BadWildcard),
                "{f:?}"
            );
        }
    }

    #[test]
    fn filter_empty_nul_length() {
        assert_eq!(validate_topic_filter(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_filter("a/\0/#"), Err(TopicError::Nul));
        assert_eq!(validate_topic_filter(&"+/".repeat(32_767)), Ok(()));
        let max = format!("{}#", "+/".repeat(32_767));
        assert_eq!(max.len(), MAX_TOPIC_LEN);
        assert_eq!(validate_topic_filter(&max), Ok(()));
        assert_eq!(
            validate_topic_filter(&"a".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong)
        );
    }

    #[test]
    fn shared_subscription_filters_mqtt_4_8_2() {
        for f in [
            "$share/group/#",
            "$share/group/sport/+/player1",
            "$share/g/a",
            "$share/group/$SYS/#",
            "$share/group//",
        ] {
            assert_eq!(validate_topic_filter(f), Ok(()), "{f:?}");
        }
        for f in [
            "$share",
            "$share/",
            "$share/group",
            "$share/group/",
            "$share//a",
            "$share/+/a",
            "$share/#/a",
            "$share/gr+oup/a",
            "$share/gr#oup/a",
        ] {
            assert_eq!(
                validate_topic_filter(f),
                Err(TopicError::InvalidShare),
                "{f:?}"
            );
        }
        // The filter after the share name follows the ordinary rules.
        assert_eq!(
            validate_topic_filter("$share/group/a#"),
            Err(TopicError::BadWildcard)
        );
        assert_eq!(
            validate_topic_filter("$share/group/#/a"),
            Err(TopicError::BadWildcard)
        );
        // Not a shared subscription: the first level is not exactly "$share".
        assert_eq!(validate_topic_filter("$shared/x"), Ok(()));
        assert_eq!(validate_topic_filter("$SHARE/x"), Ok(()));
    }

    // ---- matching --------------------------------------------------------------------

    #[track_caller]
    fn yes(f: &str, t: &str) {
        assert!(matches(f, t), "{f:?} should match {t:?}");
    }

    #[track_caller]
    fn no(f: &str, t: &str) {
        assert!(!matches(f, t), "{f:?} should not match {t:?}");
    }

    #[test]
    fn multi_level_wildcard_spec_4_7_1_2() {
        yes("sport/tennis/player1/#", "sport/tennis/player1");
        yes("sport/tennis/player1/#", "sport/tennis/player1/ranking");
        yes(
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
        );
        yes("sport/#", "sport");
        yes("sport/#", "sport/");
        yes("#", "sport");
        yes("#", "/");
        yes("#", "a/b/c/d/e");
        no("sport/tennis/player1/#", "sport/tennis");
        no("sport/tennis/player1/#", "sport/tennis/player2");
        no("sport/#", "sports");
        no("sport/#", "sportx/tennis");
    }

    #[test]
    fn single_level_wildcard_spec_4_7_1_3() {
        yes("sport/tennis/+", "sport/tennis/player1");
        yes("sport/tennis/+", "sport/tennis/player2");
        no("sport/tennis/+", "sport/tennis/player1/ranking");
        no("sport/+", "sport");
        yes("sport/+", "sport/");
        yes("+/+", "/finance");
        yes("/+", "/finance");
        no("+", "/finance");
        yes("sport/+/player1", "sport/tennis/player1");
        no("sport/+/player1", "sport/tennis/player2");
        yes("+/tennis/#", "sport/tennis");
        yes("+/tennis/#", "sport/tennis/player1/score");
        yes("+", "sport");
        yes("+/+/+", "//");
        no("+/+", "a");
        yes("+/#", "a");
    }

    #[test]
    fn dollar_topics_mqtt_4_7_2_1() {
        no("#", "$SYS/monitor/Clients");
        no("#", "$SYS");
        no("+/monitor/Clients", "$SYS/monitor/Clients");
        no("+", "$SYS");
        no("+/#", "$SYS/x");
        yes("$SYS/#", "$SYS/monitor/Clients");
        yes("$SYS/#", "$SYS");
        yes("$SYS/monitor/+", "$SYS/monitor/Clients");
        yes("$SYS/monitor/Clients", "$SYS/monitor/Clients");
        // Only a leading '$' is special.
        yes("#", "a/$SYS");
        yes("a/+", "a/$SYS");
    }

    #[test]
    fn case_and_separators_spec_4_7_3() {
        no("ACCOUNTS", "Accounts");
        no("Accounts", "ACCOUNTS");
        yes("Accounts payable", "Accounts payable");
        no("/finance", "finance");
        no("finance", "/finance");
        no("finance/", "finance");
        yes("a//b", "a//b");
        no("a/b", "a//b");
    }

    #[test]
    fn exact_filters_match_only_equal_topics() {
        yes("a/b/c", "a/b/c");
        no("a/b/c", "a/b");
        no("a/b", "a/b/c");
        no("a/b/c", "a/b/d");
    }

    #[test]
    fn shared_subscriptions_match_after_stripping_prefix() {
        yes("$share/group/sport/#", "sport/tennis");
        yes("$share/group/#", "a/b");
        yes("$share/group/+/x", "a/x");
        no("$share/group/#", "$SYS/x"); // MQTT-4.7.2-1 applies to the inner filter
        yes("$share/group/$SYS/#", "$SYS/x");
        no("$share/group/a", "$share/group/a");
        no("$share/group/a", "group/a");
    }

    #[test]
    fn invalid_inputs_never_match() {
        no("sport/tennis#", "sport/tennis#");
        no("a/#/b", "a/x/b");
        no("", "");
        no("#", "");
        no("a", "a\0");
        no("+", "+");
        no("#", "#");
        no("$share/group", "group");
        no("$share//a", "a");
        no(
            &"a".repeat(MAX_TOPIC_LEN + 1),
            &"a".repeat(MAX_TOPIC_LEN + 1),
        );
    }

    #[test]
    fn errors_display() {
        assert_eq!(TopicError::Empty.to_string(), "topic is empty");
        assert!(TopicError::InvalidShare.to_string().contains("$share"));
    }

    // ---- properties ------------------------------------------------------------------

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        /// A level of a topic name: no wildcards, no '/', no NUL, no leading '$'; may be empty.
        fn level() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9 _.é-]{0,6}"
        }

        /// Random levels (joined with '/'), and for each level whether to replace it with '+'.
        fn levels_and_mask() -> impl Strategy<Value = (Vec<String>, Vec<bool>)> {
            prop::collection::vec((level(), any::<bool>()), 1..8)
                .prop_map(|v| v.into_iter().unzip())
                .prop_filter(
                    "topic name must not be empty",
                    |(l, _): &(Vec<String>, _)| !l.join("/").is_empty(),
                )
        }

        proptest! {
            #[test]
            fn plus_replacement_matches((levels, mask) in levels_and_mask()) {
                let topic = levels.join("/");
                let filter: Vec<&str> = levels
                    .iter()
                    .zip(&mask)
                    .map(|(l, &plus)| if plus { "+" } else { l.as_str() })
                    .collect();
                let filter = filter.join("/");
                prop_assert_eq!(validate_topic_name(&topic), Ok(()));
                prop_assert_eq!(validate_topic_filter(&filter), Ok(()));
                prop_assert!(matches(&filter, &topic), "{:?} vs {:?}", filter, topic);
                let shared = format!("$share/g/{filter}");
                prop_assert!(matches(&shared, &topic), "{:?} vs {:?}", shared, topic);
            }

            #[test]
            fn hash_suffix_matches(
                (levels, mask) in levels_and_mask(),
                cut in any::<prop::sample::Index>(),
            ) {
                let topic = levels.join("/");
                // Keep the first `keep` levels (0..=len), '+'-masked, then '#'.
                let keep = cut.index(levels.len() + 1);
                let mut filter: Vec<&str> = levels[..keep]
                    .iter()
                    .zip(&mask)
                    .map(|(l, &plus)| if plus { "+" } else { l.as_str() })
                    .collect();
                filter.push("#");
                let filter = filter.join("/");
                prop_assert_eq!(validate_topic_filter(&filter), Ok(()));
                prop_assert!(matches(&filter, &topic), "{:?} vs {:?}", filter, topic);
            }

            #[test]
            fn changed_literal_level_does_not_match(
                (levels, mask) in levels_and_mask(),
                which in any::<prop::sample::Index>(),
            ) {
                let topic = levels.join("/");
                let i = which.index(levels.len());
                let mut filter: Vec<String> = levels
                    .iter()
                    .zip(&mask)
                    .map(|(l, &plus)| if plus { "+".to_owned() } else { l.clone() })
                    .collect();
                filter[i] = format!("{}x", levels[i]); // differs from the topic's level
                let filter = filter.join("/");
                prop_assert!(!matches(&filter, &topic), "{:?} vs {:?}", filter, topic);
            }

            #[test]
            fn extra_level_does_not_match((levels, mask) in levels_and_mask()) {
                let topic = levels.join("/");
                let filter: Vec<&str> = levels
                    .iter()
                    .zip(&mask)
                    .map(|(l, &plus)| if plus { "+" } else { l.as_str() })
                    .collect();
                let longer = format!("{}/+", filter.join("/"));
                prop_assert!(!matches(&longer, &topic), "{:?} vs {:?}", longer, topic);
            }

            #[test]
            fn dollar_topics_never_match_leading_wildcards(
                (levels, mask) in levels_and_mask(),
                hash in any::<bool>(),
            ) {
                let topic = format!("${}", levels.join("/"));
                let mut filter: Vec<&str> = levels
                    .iter()
                    .zip(&mask)
                    .map(|(l, &plus)| if plus { "+" } else { l.as_str() })
                    .collect();
                filter[0] = "+";
                let filter = if hash { "#".to_owned() } else { filter.join("/") };
                prop_assert!(!matches(&filter, &topic), "{:?} vs {:?}", filter, topic);
            }

            #[test]
            fn literal_filter_matches_iff_equal(a in "[a/+#$]{1,6}", b in "[a/$]{1,6}") {
                if !a.contains(['+', '#']) {
                    prop_assert_eq!(matches(&a, &b), a == b);
                }
            }

            #[test]
            fn never_panics(filter in any::<String>(), topic in any::<String>()) {
                let _ = validate_topic_name(&topic);
                let _ = validate_topic_filter(&filter);
                let _ = matches(&filter, &topic);
            }

            #[test]
            fn matching_implies_both_valid(f in "[a/+#$\0]{0,6}", t in "[a/+#$\0]{0,6}") {
                if matches(&f, &t) {
                    prop_assert_eq!(validate_topic_filter(&f), Ok(()));
                    prop_assert_eq!(validate_topic_name(&t), Ok(()));
                }
            }
        }
    }
}
