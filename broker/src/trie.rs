//! The subscription trie: one tenant's topic filters, matched against every published topic.
//!
//! Owned by the tenant's engine actor, so it takes no locks. Matching is the hot path of every
//! message, hence the layout: each node keeps its literal children in an [`FxHashMap`] keyed by
//! level, and the `+` child and the value of `<prefix>/#` in their own fields, so wildcard
//! branches cost no hashing; a match allocates nothing unless the topic fans out over more than
//! [`INLINE_BRANCHES`] pending `+` branches at once. Level keys up to 24 bytes are stored inline
//! in the hash buckets (see `LevelKey`), which matters more than anything else at a million
//! subscriptions, where a match is bound by cache misses.
//!
//! Topics and filters may have up to 32,768 levels (65,535 bytes of `/`), so nothing here
//! recurses over levels: matching, removal and dropping all use explicit stacks, and a hostile
//! filter cannot overflow a worker thread's stack.

use std::fmt;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use tenantmq_codec::{TopicFilter, TopicName};

/// Pending `+` branches a match keeps on the thread stack before spilling to the heap. A branch
/// is pending per level that has a `+` child along the path, so real topic trees stay far below.
pub const INLINE_BRANCHES: usize = 16;

/// A map from [`TopicFilter`] to `V`, answering "which filters match this topic".
///
/// The engine keeps one per tenant, with each filter's subscribers (and shared-subscription
/// groups) as `V`. Values are stored inline in the nodes (two slots per node, for the filter
/// ending there and its `/#`), so a small `V` keeps more of the trie in cache.
pub struct SubscriptionTrie<V> {
    root: Node<V>,
    len: usize,
}

/// A literal level as a map key. Levels of up to 24 bytes, nearly all real ones, live inline in
/// the hash-map bucket beside the child node, so confirming a lookup's key costs no pointer
/// chase to a separate allocation: one cache miss less per level on the hot path, and no
/// allocation per level when subscribing.
type LevelKey = SmallVec<[u8; 24]>;

struct Node<V> {
    /// The value of the filter that ends at this node.
    value: Option<V>,
    /// The value of the filter `<this node's path>/#` (or `#` at the root). Kept apart from a
    /// child node because `#` is always the last level (MQTT-4.7.1-1).
    hash: Option<V>,
    /// Literal levels. Keys are owned copies: borrowing them from the SUBSCRIBE packet would
    /// pin the whole packet buffer for as long as the subscription lives.
    children: FxHashMap<LevelKey, Node<V>>,
    /// The `+` level.
    plus: Option<Box<Node<V>>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Self {
            value: None,
            hash: None,
            children: FxHashMap::default(),
            plus: None,
        }
    }
}

impl<V> Node<V> {
    fn child(&self, level: &str) -> Option<&Node<V>> {
        if level == "+" {
            self.plus.as_deref()
        } else {
            self.children.get(level.as_bytes())
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<V>> {
        if level == "+" {
            self.plus.as_deref_mut()
        } else {
            self.children.get_mut(level.as_bytes())
        }
    }

    fn child_or_insert(&mut self, level: &str) -> &mut Node<V> {
        if level == "+" {
            return self.plus.get_or_insert_with(Box::default);
        }
        self.children
            .entry(LevelKey::from_slice(level.as_bytes()))
            .or_default()
    }

    /// Detaches the child at `level`, returning it so the caller can drop it iteratively.
    fn detach_child(&mut self, level: &str) -> Option<Node<V>> {
        if level == "+" {
            self.plus.take().map(|b| *b)
        } else {
            self.children.remove(level.as_bytes())
        }
    }

    fn slot(&self, hash: bool) -> &Option<V> {
        if hash { &self.hash } else { &self.value }
    }

    fn slot_mut(&mut self, hash: bool) -> &mut Option<V> {
        if hash {
            &mut self.hash
        } else {
            &mut self.value
        }
    }

    fn branch_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }
}

/// Splits a filter into the levels that lead to its node and whether its value lives in that
/// node's `#` slot: `a/b` → (`a`, `b`; value), `a/#` → (`a`; hash), `#` → (no level; hash).
fn filter_path(filter: &TopicFilter) -> (impl Iterator<Item = &str> + Clone, bool) {
    let s = filter.as_str();
    let (path, hash) = if s == "#" {
        (None, true)
    } else if let Some(parent) = s.strip_suffix("/#") {
        // `/#` leaves the empty first level, which is distinct from no level at all.
        (Some(parent), true)
    } else {
        (Some(s), false)
    };
    (path.into_iter().flat_map(|p| p.split('/')), hash)
}

/// Splits off the first level of a non-exhausted topic remainder; `None` as the rest means
/// the topic has no more levels.
#[inline]
fn split_level(rest: &str) -> (&str, Option<&str>) {
    match find_slash(rest.as_bytes()) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

/// The position of the first `/`, eight bytes at a time. `str::split_once` goes through a
/// general `memchr` whose set-up costs more than these short levels: it was a third of a
/// match's instructions.
#[inline]
fn find_slash(bytes: &[u8]) -> Option<usize> {
    const SLASHES: u64 = u64::from_le_bytes([b'/'; 8]);
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        // Bytes equal to `/` become zero; the expression sets the high bit of exactly the
        // zero bytes (no false positives from borrows, unlike the shorter `x - 0x01..` form).
        let x = u64::from_le_bytes(word) ^ SLASHES;
        let slashes = !(((x & LOW7) + LOW7) | x | LOW7);
        if slashes != 0 {
            return Some(offset + slashes.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&b| b == b'/').map(|i| offset + i)
}

impl<V> SubscriptionTrie<V> {
    /// An empty trie.
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of filters holding a value.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no filter holds a value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value stored for exactly this filter (no wildcard matching).
    pub fn get(&self, filter: &TopicFilter) -> Option<&V> {
        let (path, hash) = filter_path(filter);
        let mut node = &self.root;
        for level in path {
            node = node.child(level)?;
        }
        node.slot(hash).as_ref()
    }

    /// The value stored for exactly this filter, mutably.
    pub fn get_mut(&mut self, filter: &TopicFilter) -> Option<&mut V> {
        let (path, hash) = filter_path(filter);
        let mut node = &mut self.root;
        for level in path {
            node = node.child_mut(level)?;
        }
        node.slot_mut(hash).as_mut()
    }

    /// Removes the filter's value, pruning the nodes left empty.
    pub fn remove(&mut self, filter: &TopicFilter) -> Option<V> {
        self.remove_if(filter, |_| true)
    }

    /// Removes the filter's value if `pred` holds for it, pruning the nodes left empty; the
    /// engine calls this with `|subscribers| subscribers.is_empty()` after an UNSUBSCRIBE.
    pub fn remove_if<P: FnOnce(&V) -> bool>(&mut self, filter: &TopicFilter, pred: P) -> Option<V> {
        let (path, hash) = filter_path(filter);

        // Pass 1, read-only: find the value, and the shallowest node below which the path
        // holds nothing else (`cut`: its depth, where the edge to prune starts).
        let mut node = &self.root;
        let mut cut = 0;
        for (depth, level) in path.clone().enumerate() {
            if depth > 0 && (node.value.is_some() || node.hash.is_some() || node.branch_count() > 1)
            {
                cut = depth;
            }
            node = node.child(level)?;
        }
        let target = node.slot(hash).as_ref()?;
        if !pred(target) {
            return None;
        }
        let other_slot = node.slot(!hash);
        let prune =
            other_slot.is_none() && node.branch_count() == 0 && path.clone().next().is_some();

        // Pass 2: take the value.
        let mut node = &mut self.root;
        for level in path.clone() {
            node = node.child_mut(level)?;
        }
        let value = node.slot_mut(hash).take();
        self.len -= usize::from(value.is_some());

        // Pass 3: detach the emptied chain and drop it without recursion.
        if prune {
            let mut levels = path;
            let mut node = &mut self.root;
            for level in levels.by_ref().take(cut) {
                let Some(child) = node.child_mut(level) else {
                    return value;
                };
                node = child;
            }
            if let Some(chain) = levels.next().and_then(|level| node.detach_child(level)) {
                drop_iteratively(chain);
            }
        }
        value
    }

    /// Calls `f` once with the value of every filter that matches `topic` (§4.7), in no
    /// particular order.
    pub fn for_each_match<'a, F: FnMut(&'a V)>(&'a self, topic: &TopicName, mut f: F) {
        let mut pending: SmallVec<[(&'a Node<V>, Option<&str>); INLINE_BRANCHES]> = SmallVec::new();
        let (level, rest) = split_level(topic.as_str());
        // MQTT-4.7.2-1: `#` and `+` at the first level do not match topics starting with `$`.
        if !topic.is_system() {
            if let Some(v) = &self.root.hash {
                f(v);
            }
            if let Some(plus) = self.root.plus.as_deref() {
                pending.push((plus, rest));
            }
        }
        if let Some(child) = self.root.children.get(level.as_bytes()) {
            pending.push((child, rest));
        }
        while let Some((mut node, mut rest)) = pending.pop() {
            // Follow the literal path in this loop and leave only `+` branches for later.
            loop {
                // `<prefix>/#` matches the topic `<prefix>` too (§4.7.1.2), so the `#` slot
                // fires whether or not levels remain.
                if let Some(v) = &node.hash {
                    f(v);
                }
                let Some(remaining) = rest else {
                    if let Some(v) = &node.value {
                        f(v);
                    }
                    break;
                };
                let (level, next) = split_level(remaining);
                if let Some(plus) = node.plus.as_deref() {
                    pending.push((plus, next));
                }
                match node.children.get(level.as_bytes()) {
                    Some(child) => (node, rest) = (child, next),
                    None => break,
                }
            }
        }
    }

    /// Calls `f` once with the value of every filter that matches `topic`, mutably; the same
    /// walk as [`for_each_match`](Self::for_each_match).
    pub fn for_each_match_mut<F: FnMut(&mut V)>(&mut self, topic: &TopicName, mut f: F) {
        let mut pending: SmallVec<[(&mut Node<V>, Option<&str>); INLINE_BRANCHES]> =
            SmallVec::new();
        let (level, rest) = split_level(topic.as_str());
        let Node {
            hash,
            children,
            plus,
            ..
        } = &mut self.root;
        if !topic.is_system() {
            if let Some(v) = hash {
                f(v);
            }
            if let Some(plus) = plus.as_deref_mut() {
                pending.push((plus, rest));
            }
        }
        if let Some(child) = children.get_mut(level.as_bytes()) {
            pending.push((child, rest));
        }
        while let Some((mut node, mut rest)) = pending.pop() {
            loop {
                // Split the node into disjoint borrows so the `+` branch can wait on the stack
                // while the walk follows the literal child.
                let Node {
                    value,
                    hash,
                    children,
                    plus,
                } = node;
                if let Some(v) = hash {
                    f(v);
                }
                let Some(remaining) = rest else {
                    if let Some(v) = value {
                        f(v);
                    }
                    break;
                };
                let (level, next) = split_level(remaining);
                if let Some(plus) = plus.as_deref_mut() {
                    pending.push((plus, next));
                }
                match children.get_mut(level.as_bytes()) {
                    Some(child) => (node, rest) = (child, next),
                    None => break,
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
            stack.extend(node.plus.as_deref());
        }
        count
    }
}

impl<V: Default> SubscriptionTrie<V> {
    /// The value stored for exactly this filter, inserting `V::default()` (and any missing
    /// nodes) if there is none.
    pub fn entry(&mut self, filter: &TopicFilter) -> &mut V {
        let (path, hash) = filter_path(filter);
        let mut node = &mut self.root;
        for level in path {
            node = node.child_or_insert(level);
        }
        let slot = node.slot_mut(hash);
        if slot.is_none() {
            self.len += 1;
        }
        slot.get_or_insert_with(V::default)
    }
}

/// Drops a subtree without recursing over its depth: the derived drop of a node would recurse
/// once per level, and a 32,768-level filter would overflow a worker thread's stack.
fn drop_iteratively<V>(node: Node<V>) {
    let mut stack = vec![node];
    while let Some(mut node) = stack.pop() {
        stack.extend(node.children.drain().map(|(_, child)| child));
        if let Some(plus) = node.plus.take() {
            stack.push(*plus);
        }
    }
}

impl<V> Drop for SubscriptionTrie<V> {
    fn drop(&mut self) {
        drop_iteratively(std::mem::take(&mut self.root));
    }
}

impl<V> Default for SubscriptionTrie<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for SubscriptionTrie<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionTrie")
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

    /// A trie whose value for each filter is the filter itself.
    fn trie_of(filters: &[&str]) -> SubscriptionTrie<String> {
        let mut trie = SubscriptionTrie::new();
        for f in filters {
            *trie.entry(&filter(f)) = (*f).to_owned();
        }
        trie
    }

    fn matched(trie: &SubscriptionTrie<String>, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        trie.for_each_match(&name(topic), |v| out.push(v.clone()));
        out.sort();
        out
    }

    #[test]
    fn entry_get_remove() {
        let mut trie: SubscriptionTrie<Vec<u32>> = SubscriptionTrie::new();
        assert!(trie.is_empty());
        trie.entry(&filter("a/+/c")).push(1);
        trie.entry(&filter("a/+/c")).push(2);
        trie.entry(&filter("a/#")).push(3);
        assert_eq!(trie.len(), 2);
        assert_eq!(trie.get(&filter("a/+/c")), Some(&vec![1, 2]));
        assert_eq!(trie.get(&filter("a/+")), None);
        assert_eq!(trie.get(&filter("a")), None);
        assert_eq!(trie.get(&filter("a/#")), Some(&vec![3]));
        if let Some(v) = trie.get_mut(&filter("a/#")) {
            v.push(4);
        }
        assert_eq!(trie.remove(&filter("a/#")), Some(vec![3, 4]));
        assert_eq!(trie.remove(&filter("a/#")), None);
        assert_eq!(trie.remove(&filter("a/b/c")), None);
        assert_eq!(trie.len(), 1);
        assert_eq!(trie.remove_if(&filter("a/+/c"), |v| v.is_empty()), None);
        assert_eq!(trie.len(), 1);
        trie.entry(&filter("a/+/c")).clear();
        assert_eq!(
            trie.remove_if(&filter("a/+/c"), |v| v.is_empty()),
            Some(vec![])
        );
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn hash_lives_beside_the_parent_value() {
        // `a/#`, `a` and `#` are three filters even though `#` sits at the parent's node.
        let mut trie = trie_of(&["a", "a/#", "#", "/#", "+/#"]);
        assert_eq!(trie.len(), 5);
        assert_eq!(matched(&trie, "a"), ["#", "+/#", "a", "a/#"]);
        assert_eq!(matched(&trie, "/a"), ["#", "+/#", "/#"]);
        assert_eq!(matched(&trie, "/"), ["#", "+/#", "/#"]);
        assert_eq!(trie.remove(&filter("a/#")).as_deref(), Some("a/#"));
        assert_eq!(matched(&trie, "a/b"), ["#", "+/#"]);
        assert_eq!(trie.remove(&filter("#")).as_deref(), Some("#"));
        assert_eq!(matched(&trie, "a"), ["+/#", "a"]);
    }

    #[test]
    fn spec_examples() {
        let trie = trie_of(&[
            "sport/tennis/player1/#",
            "sport/#",
            "sport/tennis/+",
            "sport/+",
            "+/+",
            "/+",
            "+",
            "#",
            "$SYS/#",
            "$SYS/monitor/+",
            "+/monitor/Clients",
        ]);
        assert_eq!(matched(&trie, "sport"), ["#", "+", "sport/#"]);
        assert_eq!(
            matched(&trie, "sport/tennis/player1"),
            ["#", "sport/#", "sport/tennis/+", "sport/tennis/player1/#"]
        );
        assert_eq!(matched(&trie, "/finance"), ["#", "+/+", "/+"]);
        assert_eq!(matched(&trie, "sport/"), ["#", "+/+", "sport/#", "sport/+"]);
        // MQTT-4.7.2-1
        assert_eq!(
            matched(&trie, "$SYS/monitor/Clients"),
            ["$SYS/#", "$SYS/monitor/+"]
        );
        assert_eq!(matched(&trie, "$SYS"), ["$SYS/#"]);
    }

    #[test]
    fn for_each_match_mut_reaches_each_value_once() {
        let mut trie: SubscriptionTrie<u32> = SubscriptionTrie::new();
        for f in ["a/b", "a/+", "+/b", "+/+", "#", "a/#", "a/b/#"] {
            *trie.entry(&filter(f)) = 0;
        }
        trie.for_each_match_mut(&name("a/b"), |v| *v += 1);
        trie.for_each_match_mut(&name("a/b"), |v| *v += 1);
        for f in ["a/b", "a/+", "+/b", "+/+", "#", "a/#", "a/b/#"] {
            assert_eq!(trie.get(&filter(f)), Some(&2), "{f}");
        }
        trie.for_each_match_mut(&name("$a/b"), |v| *v += 1);
        assert_eq!(trie.get(&filter("#")), Some(&2));
    }

    #[test]
    fn removal_prunes_only_the_emptied_chain() {
        let mut trie = trie_of(&["a/b/c/d", "a/b", "a/x"]);
        let before = trie.node_count();
        assert_eq!(trie.remove(&filter("a/b/c/d")).as_deref(), Some("a/b/c/d"));
        assert_eq!(trie.node_count(), before - 2);
        assert_eq!(matched(&trie, "a/b"), ["a/b"]);
        assert_eq!(trie.remove(&filter("a/b")).as_deref(), Some("a/b"));
        assert_eq!(matched(&trie, "a/x"), ["a/x"]);
        assert_eq!(trie.node_count(), 3);
        // A node that still has a `#` value is kept.
        let mut trie = trie_of(&["a/#", "a/+/c"]);
        trie.remove(&filter("a/+/c"));
        assert_eq!(trie.node_count(), 2);
        trie.remove(&filter("a/#"));
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn many_plus_branches_along_one_topic() {
        // Many `+` branches along one topic still reach every value.
        let filters: Vec<String> = (0..8)
            .map(|i| {
                (0..8)
                    .map(|j| if j == i { "x" } else { "+" })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
        let trie = trie_of(&refs);
        assert_eq!(matched(&trie, "x/x/x/x/x/x/x/x").len(), 8);
    }

    #[test]
    fn deep_filters_do_not_recurse() {
        // 32,768 levels is the most a 65,535-byte topic can have. Run on a small stack so any
        // recursion per level would overflow.
        let handle = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let deep = vec!["a"; 32_768].join("/");
                let deep_plus = vec!["+"; 32_767].join("/") + "/#";
                let mut trie: SubscriptionTrie<u8> = SubscriptionTrie::new();
                *trie.entry(&filter(&deep)) = 1;
                *trie.entry(&filter(&deep_plus)) = 2;
                let mut seen = Vec::new();
                trie.for_each_match(&name(&deep), |v| seen.push(*v));
                seen.sort_unstable();
                assert_eq!(seen, [1, 2]);
                trie.for_each_match_mut(&name(&deep), |v| *v += 1);
                assert_eq!(trie.remove(&filter(&deep)), Some(2));
                assert_eq!(trie.len(), 1);
                drop(trie);
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

    #[test]
    fn split_level_finds_every_separator() {
        assert_eq!(split_level("a"), ("a", None));
        assert_eq!(split_level("/"), ("", Some("")));
        assert_eq!(split_level("abcdefgh/i"), ("abcdefgh", Some("i")));
        assert_eq!(
            split_level("abcdefghijklmno/"),
            ("abcdefghijklmno", Some(""))
        );
        assert_eq!(split_level("ünïcödé-level/x"), ("ünïcödé-level", Some("x")));
    }

    proptest! {
        #[test]
        fn split_level_agrees_with_split_once(s in "[a/é€]{0,40}") {
            let want = match s.split_once('/') {
                Some((level, rest)) => (level, Some(rest)),
                None => (s.as_str(), None),
            };
            prop_assert_eq!(split_level(&s), want);
        }

        #[test]
        fn matches_agree_with_topic_filter(
            filters in prop::collection::btree_set(filter_strategy(), 0..40),
            topics in prop::collection::vec(topic_strategy(), 1..20),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let mut filters: Vec<TopicFilter> = filters.iter().map(|f| filter(f)).collect();
            let mut trie = SubscriptionTrie::new();
            for (i, f) in filters.iter().enumerate() {
                *trie.entry(f) = i;
            }
            // Remove some filters to exercise pruning, then check what is left.
            for index in removed {
                if filters.is_empty() {
                    break;
                }
                let f = filters.swap_remove(index.index(filters.len()));
                prop_assert!(trie.remove(&f).is_some());
                prop_assert!(trie.get(&f).is_none());
            }
            prop_assert_eq!(trie.len(), filters.len());
            for t in &topics {
                let topic = name(t);
                let mut got = Vec::new();
                trie.for_each_match(&topic, |v| got.push(*v));
                got.sort_unstable();
                let mut want: Vec<usize> = filters
                    .iter()
                    .filter(|f| f.matches(&topic))
                    .filter_map(|f| trie.get(f).copied())
                    .collect();
                want.sort_unstable();
                prop_assert_eq!(&got, &want, "topic {}", t);
                let mut got_mut = Vec::new();
                trie.for_each_match_mut(&topic, |v| got_mut.push(*v));
                got_mut.sort_unstable();
                prop_assert_eq!(&got_mut, &want);
            }
            for f in &filters {
                prop_assert!(trie.remove(f).is_some());
            }
            prop_assert!(trie.is_empty());
            prop_assert_eq!(trie.node_count(), 1);
        }
    }
}
