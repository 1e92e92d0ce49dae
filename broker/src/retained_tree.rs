//! The retained-message index: one tenant's retained messages by topic, searchable by filter.
//!
//! The inverse of the [subscription trie](crate::trie): here the stored keys are topic names and
//! the query is a filter, asked when a client subscribes (MQTT-3.3.1-9 ff.: the retained
//! messages matching a new subscription are sent to it). A query walks only the branches the
//! filter can match: one exact child per literal level, every child for `+`, the whole subtree
//! for `#`.
//!
//! Owned by the tenant's engine actor, so no locks. As in the trie, nothing recurses over
//! levels (a topic may have 32,768 of them): queries and drops use explicit stacks.

use std::fmt;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use tenantmq_codec::{TopicFilter, TopicName};

/// A map from [`TopicName`] to `V` that lists the entries matching a [`TopicFilter`].
///
/// The engine stores the retained message (and its topic, if it needs it) as `V`.
pub struct RetainedTree<V> {
    root: Node<V>,
    len: usize,
}

struct Node<V> {
    value: Option<V>,
    /// Owned keys, so a retained topic does not pin the PUBLISH buffer it arrived in.
    children: FxHashMap<Box<str>, Node<V>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Self {
            value: None,
            children: FxHashMap::default(),
        }
    }
}

/// Work left for a query: match the rest of the filter below a node, or report a whole
/// subtree (what `#` asks for).
enum Frame<'n, 'f, V> {
    Match {
        node: &'n Node<V>,
        /// The filter levels still to match; `None` once all are consumed.
        rest: Option<&'f str>,
    },
    Subtree(&'n Node<V>),
}

/// Splits off the first level of a non-exhausted remainder.
fn split_level(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((level, next)) => (level, Some(next)),
        None => (rest, None),
    }
}

impl<V> RetainedTree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of retained entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `v` for `topic`, returning the value it replaces (a new retained message replaces
    /// the previous one of its topic, MQTT-3.3.1-5).
    pub fn insert(&mut self, topic: &TopicName, v: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in topic.levels() {
            // The key is allocated even when the level exists, as in the trie: avoiding it
            // needs a second lookup that can only panic, and this is not the hot path.
            node = node.children.entry(level.into()).or_default();
        }
        let old = node.value.replace(v);
        self.len += usize::from(old.is_none());
        old
    }

    /// The entry stored for exactly `topic`.
    pub fn get(&self, topic: &TopicName) -> Option<&V> {
        let mut node = &self.root;
        for level in topic.levels() {
            node = node.children.get(level)?;
        }
        node.value.as_ref()
    }

    /// Removes the entry for `topic`, pruning the nodes left empty.
    pub fn remove(&mut self, topic: &TopicName) -> Option<V> {
        // Read-only pass: find the shallowest node below which the path holds nothing else.
        let mut node = &self.root;
        let mut cut = 0;
        for (depth, level) in topic.levels().enumerate() {
            if depth > 0 && (node.value.is_some() || node.children.len() > 1) {
                cut = depth;
            }
            node = node.children.get(level)?;
        }
        node.value.as_ref()?;
        let prune = node.children.is_empty();

        let mut levels = topic.levels();
        let mut node = &mut self.root;
        if prune {
            for level in levels.by_ref().take(cut) {
                node = node.children.get_mut(level)?;
            }
            let chain = node.children.remove(levels.next()?)?;
            // The chain's last node holds the value; every node above it holds only the path.
            let mut node = chain;
            let value = loop {
                let Some(next) = levels.next() else {
                    break node.value.take();
                };
                let Some(child) = node.children.remove(next) else {
                    break None;
                };
                node = child;
            };
            self.len -= usize::from(value.is_some());
            value
        } else {
            for level in levels {
                node = node.children.get_mut(level)?;
            }
            let value = node.value.take();
            self.len -= usize::from(value.is_some());
            value
        }
    }

    /// Calls `f` once with every entry whose topic matches `filter` (§4.7), in no particular
    /// order. Topics starting with `$` are not matched by a filter starting with a wildcard
    /// (MQTT-4.7.2-1).
    pub fn for_each_matching<'a, F: FnMut(&'a V)>(&'a self, filter: &TopicFilter, mut f: F) {
        let mut stack: SmallVec<[Frame<'a, '_, V>; 32]> = SmallVec::new();
        // The root is the only node that never holds a value (topics are non-empty), and the
        // only place the `$` rule applies, so its first level is expanded here.
        let (level, rest) = split_level(filter.as_str());
        match level {
            "#" | "+" => {
                let not_system = self
                    .root
                    .children
                    .iter()
                    .filter(|(key, _)| !key.starts_with('$'))
                    .map(|(_, child)| child);
                if level == "#" {
                    stack.extend(not_system.map(Frame::Subtree));
                } else {
                    stack.extend(not_system.map(|node| Frame::Match { node, rest }));
                }
            }
            _ => {
                if let Some(node) = self.root.children.get(level) {
                    stack.push(Frame::Match { node, rest });
                }
            }
        }
        while let Some(frame) = stack.pop() {
            match frame {
                Frame::Subtree(node) => {
                    if let Some(v) = &node.value {
                        f(v);
                    }
                    stack.extend(node.children.values().map(Frame::Subtree));
                }
                Frame::Match { node, rest: None } => {
                    if let Some(v) = &node.value {
                        f(v);
                    }
                }
                Frame::Match {
                    node,
                    rest: Some(remaining),
                } => {
                    let (level, rest) = split_level(remaining);
                    match level {
                        // `#` matches the parent level too (§4.7.1.2): `sport/#` matches
                        // `sport`, so the subtree includes this node.
                        "#" => stack.push(Frame::Subtree(node)),
                        "+" => stack.extend(
                            node.children
                                .values()
                                .map(|node| Frame::Match { node, rest }),
                        ),
                        _ => {
                            if let Some(node) = node.children.get(level) {
                                stack.push(Frame::Match { node, rest });
                            }
                        }
                    }
                }
            }
        }
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
        }
        count
    }
}

impl<V> Drop for RetainedTree<V> {
    /// Drops the nodes one by one: the derived drop recurses once per level, and a topic of
    /// 32,768 levels would overflow a worker thread's stack.
    fn drop(&mut self) {
        let mut stack = vec![std::mem::take(&mut self.root)];
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain().map(|(_, child)| child));
        }
    }
}

impl<V> Default for RetainedTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for RetainedTree<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainedTree")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> TopicName {
        TopicName::try_from(s).expect("valid topic name")
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::try_from(s).expect("valid topic filter")
    }

    fn tree_of(topics: &[&str]) -> RetainedTree<String> {
        let mut tree = RetainedTree::new();
        for t in topics {
            tree.insert(&name(t), (*t).to_owned());
        }
        tree
    }

    fn matching(tree: &RetainedTree<String>, f: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.for_each_matching(&filter(f), |v| out.push(v.clone()));
        out.sort();
        out
    }

    #[test]
    fn insert_get_remove() {
        let mut tree = RetainedTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.insert(&name("a/b"), 1), None);
        assert_eq!(tree.insert(&name("a/b"), 2), Some(1));
        assert_eq!(tree.insert(&name("a"), 3), None);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree.get(&name("a/b")), Some(&2));
        assert_eq!(tree.get(&name("a/b/c")), None);
        assert_eq!(tree.remove(&name("a/c")), None);
        assert_eq!(tree.remove(&name("a/b")), Some(2));
        assert_eq!(tree.remove(&name("a/b")), None);
        assert_eq!(tree.node_count(), 2);
        assert_eq!(tree.remove(&name("a")), Some(3));
        assert!(tree.is_empty());
        assert_eq!(tree.node_count(), 1);
    }

    #[test]
    fn removal_prunes_only_the_emptied_chain() {
        let mut tree = tree_of(&["a/b/c/d", "a/b", "a/x"]);
        assert_eq!(tree.node_count(), 6);
        assert_eq!(tree.remove(&name("a/b/c/d")).as_deref(), Some("a/b/c/d"));
        assert_eq!(tree.node_count(), 4);
        assert_eq!(tree.remove(&name("a/b")).as_deref(), Some("a/b"));
        assert_eq!(tree.node_count(), 3);
        assert_eq!(matching(&tree, "#"), ["a/x"]);
        // Removing an inner value keeps the nodes below it.
        let mut tree = tree_of(&["a/b", "a/b/c"]);
        assert_eq!(tree.remove(&name("a/b")).as_deref(), Some("a/b"));
        assert_eq!(tree.node_count(), 4);
        assert_eq!(matching(&tree, "a/b/c"), ["a/b/c"]);
    }

    #[test]
    fn spec_examples() {
        let tree = tree_of(&[
            "sport",
            "sport/",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player2",
            "/finance",
            "$SYS/monitor/Clients",
            "$SYS",
        ]);
        assert_eq!(
            matching(&tree, "sport/tennis/player1/#"),
            ["sport/tennis/player1", "sport/tennis/player1/ranking"]
        );
        assert_eq!(
            matching(&tree, "sport/#"),
            [
                "sport",
                "sport/",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player2",
            ]
        );
        assert_eq!(
            matching(&tree, "sport/tennis/+"),
            ["sport/tennis/player1", "sport/tennis/player2"]
        );
        assert_eq!(matching(&tree, "sport/+"), ["sport/"]);
        assert_eq!(matching(&tree, "+/+"), ["/finance", "sport/"]);
        assert_eq!(matching(&tree, "/+"), ["/finance"]);
        assert_eq!(matching(&tree, "+"), ["sport"]);
        // MQTT-4.7.2-1
        assert_eq!(matching(&tree, "#").len(), 6);
        assert_eq!(matching(&tree, "+/monitor/Clients"), Vec::<String>::new());
        assert_eq!(matching(&tree, "$SYS/#"), ["$SYS", "$SYS/monitor/Clients"]);
        assert_eq!(matching(&tree, "$SYS/monitor/+"), ["$SYS/monitor/Clients"]);
    }

    #[test]
    fn deep_topics_do_not_recurse() {
        let handle = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let deep = vec!["a"; 32_768].join("/");
                let mut tree = RetainedTree::new();
                tree.insert(&name(&deep), 1u8);
                tree.insert(&name("a"), 2);
                let mut seen = Vec::new();
                tree.for_each_matching(&filter("#"), |v| seen.push(*v));
                seen.sort_unstable();
                assert_eq!(seen, [1, 2]);
                assert_eq!(tree.remove(&name(&deep)), Some(1));
                assert_eq!(tree.node_count(), 2);
                tree.insert(&name(&deep), 1);
                drop(tree);
            })
            .expect("spawn");
        handle.join().expect("no stack overflow");
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "", "$x"]), 1..5)
            .prop_map(|levels| levels.join("/"))
            .prop_filter("topic names are non-empty", |t| !t.is_empty())
    }

    fn filter_strategy() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "", "$x", "+"]), 0..5),
            any::<bool>(),
        )
            .prop_map(|(mut levels, hash)| {
                if hash || levels.is_empty() {
                    levels.push("#");
                }
                levels.join("/")
            })
            .prop_filter("filters are non-empty", |f| !f.is_empty())
    }

    proptest! {
        #[test]
        fn matching_agrees_with_topic_filter(
            topics in prop::collection::btree_set(topic_strategy(), 0..40),
            filters in prop::collection::vec(filter_strategy(), 1..20),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let mut topics: Vec<TopicName> = topics.iter().map(|t| name(t)).collect();
            let mut tree = RetainedTree::new();
            for (i, t) in topics.iter().enumerate() {
                prop_assert!(tree.insert(t, i).is_none());
            }
            for index in removed {
                if topics.is_empty() {
                    break;
                }
                let t = topics.swap_remove(index.index(topics.len()));
                prop_assert!(tree.remove(&t).is_some());
                prop_assert!(tree.get(&t).is_none());
            }
            prop_assert_eq!(tree.len(), topics.len());
            for f in &filters {
                let f = filter(f);
                let mut got = Vec::new();
                tree.for_each_matching(&f, |v| got.push(*v));
                got.sort_unstable();
                let mut want: Vec<usize> = topics
                    .iter()
                    .filter(|t| f.matches(t))
                    .filter_map(|t| tree.get(t).copied())
                    .collect();
                want.sort_unstable();
                prop_assert_eq!(&got, &want, "filter {}", f);
            }
            for t in &topics {
                prop_assert!(tree.remove(t).is_some());
            }
            prop_assert!(tree.is_empty());
            prop_assert_eq!(tree.node_count(), 1);
        }
    }
}
