//! The subscription trie. Filled in by the trie work.
