//! Where each key of the file stands, so an error found after parsing (by a check that only
//! knows the key's path) is still placed at a line and column.
//!
//! The text is read a second time, only when there is an error to place, into a tree of
//! [`Spanned`] nodes that mirrors the document: a key path such as
//! `dns.gslb[0].pools[1].datacenter` walks it. A key that is absent (a missing field, a
//! default) is placed at the nearest table or array above it that the file does contain.

use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

/// One value of the document, with the spans of what it holds.
enum Node {
    Table(Vec<(String, Spanned<Node>)>),
    Array(Vec<Spanned<Node>>),
    Scalar,
}

/// The span of `key` (a dotted path with `[n]` indexes) in `text`, or of its nearest ancestor.
pub(crate) fn span_of(text: &str, key: &str) -> Option<Range<usize>> {
    let root = Node::deserialize(toml::Deserializer::new(text)).ok()?;
    let mut node = &root;
    let mut found = None;
    for step in steps(key) {
        let next = match (node, step) {
            (Node::Table(entries), Step::Key(k)) => {
                entries.iter().find(|(n, _)| n == k).map(|(_, v)| v)
            }
            (Node::Array(items), Step::Index(i)) => items.get(i),
            _ => None,
        };
        let Some(child) = next else {
            break;
        };
        // Arrays of tables (`[[x]]`) carry no span of their own in every version; skip those.
        if child.span() != (0..0) {
            found = Some(child.span());
        }
        node = child.get_ref();
    }
    found
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(key: &str) -> impl Iterator<Item = Step<'_>> {
    key.split('.').flat_map(|part| {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        let indexes = rest
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse().ok())
            .map(Step::Index);
        (!name.is_empty())
            .then_some(Step::Key(name))
            .into_iter()
            .chain(indexes)
    })
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            entries.push((k, map.next_value()?));
        }
        Ok(Node::Table(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Node::Array(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::span_of;
    use crate::error::line_col;

    const TEXT: &str = "[dns]\nlisten = [\"127.0.0.1:53\"]\n[[dns.gslb]]\nname = \"www\"\npools = [\n  { datacenter = \"fra\", addresses = [] },\n  { datacenter = \"nrt\", addresses = [] },\n]\n[dns.ttl]\nmin = 5\n";

    fn at(key: &str) -> Option<(usize, usize)> {
        span_of(TEXT, key).map(|s| line_col(TEXT, s.start))
    }

    #[test]
    fn paths_walk_tables_arrays_and_inline_tables() {
        assert_eq!(at("dns.listen"), Some((2, 10)));
        assert_eq!(at("dns.listen[0]"), Some((2, 11)));
        assert_eq!(at("dns.gslb[0].name"), Some((4, 8)));
        assert_eq!(at("dns.gslb[0].pools[1].datacenter"), Some((7, 18)));
        assert_eq!(at("dns.ttl.min"), Some((10, 7)));
    }

    #[test]
    fn an_absent_key_is_placed_at_its_nearest_ancestor() {
        assert_eq!(at("dns.gslb[0].pools[1].capacity"), Some((7, 3)));
        assert_eq!(at("dns.gslb[0].pools[7]"), at("dns.gslb[0].pools"));
        assert_eq!(at("nothing.here"), None);
    }
}
