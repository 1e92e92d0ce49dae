//! Topic names and topic filters (spec v5 4.7, v3.1.1 4.7). Filled in by the topic work.
