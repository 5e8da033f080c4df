//! Reading `NodeState.sync` and sticky-session results in the session-sync tests.

/// Entries this node merged from its peers, over every inbound connection.
pub fn received(sync: &serde_json::Value) -> u64 {
    sync["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["direction"] == "in")
        .map(|p| p["entries_received"].as_u64().unwrap_or(0))
        .sum()
}

/// Fails unless each group of `size` sessions uses more than one server: sessions that
/// all sit on one server would prove nothing about where the peer sends them.
pub fn assert_spread<T: Ord + Clone + std::fmt::Debug>(sessions: &[T], size: usize) {
    for group in sessions.chunks(size) {
        let mut distinct = group.to_vec();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 1, "all on one server: {group:?}");
    }
}
