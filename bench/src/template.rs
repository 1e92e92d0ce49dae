//! Per-client string templates: client identifiers, user names, passwords and topics.
//!
//! Placeholders are `{i}` (the client index, or the publisher index in topics) and `{run}` (a
//! short id of this run, so that two runs against the same broker never share client ids or
//! topics). `{{` and `}}` stand for literal braces. Templates are parsed once, when the
//! command line is read; expanding one is a few string pushes.

use std::fmt::Write as _;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Index,
    Run,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{name}` other than `{i}` and `{run}`.
    #[error("unknown placeholder {{{0}}} (known: {{i}}, {{run}})")]
    UnknownPlaceholder(String),
    /// A `{` without its `}`, or a lone `}`.
    #[error("unbalanced brace in template (write {{{{ or }}}} for a literal brace)")]
    Unbalanced,
}

impl Template {
    /// Parses `source`.
    ///
    /// # Errors
    /// [`TemplateError`] for an unknown placeholder or an unbalanced brace.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::Unbalanced),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => return Err(TemplateError::Unbalanced),
                            Some(c) => name.push(c),
                        }
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(match name.as_str() {
                        "i" => Part::Index,
                        "run" => Part::Run,
                        _ => return Err(TemplateError::UnknownPlaceholder(name)),
                    });
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the template uses `{i}`.
    pub fn has_index(&self) -> bool {
        self.parts.contains(&Part::Index)
    }

    /// The string for index `i` in run `run`.
    pub fn expand(&self, i: u64, run: &str) -> String {
        let mut out = String::with_capacity(self.source.len() + 8);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                // Writing to a String cannot fail.
                Part::Index => {
                    let _ = write!(out, "{i}");
                }
                Part::Run => out.push_str(run),
            }
        }
        out
    }

    /// The topic filter matching every expansion of this topic template: each topic level
    /// that holds `{i}` becomes the single-level wildcard `+` (the fanin subscriber's filter).
    ///
    /// # Errors
    /// [`TemplateError`] if a level of the template does not parse on its own (a placeholder
    /// cut by `/` cannot happen, as `/` is not allowed in placeholder names; kept for safety).
    pub fn wildcard_filter(&self, run: &str) -> Result<String, TemplateError> {
        let mut levels = Vec::new();
        for level in self.source.split('/') {
            let t = Template::parse(level)?;
            levels.push(if t.has_index() {
                "+".to_owned()
            } else {
                t.expand(0, run)
            });
        }
        Ok(levels.join("/"))
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_index_and_run() {
        let t = Template::parse("acme/dev-{i}").unwrap();
        assert_eq!(t.expand(7, "r1"), "acme/dev-7");
        assert!(t.has_index());
        let t = Template::parse("bench-{run}-{i}-x").unwrap();
        assert_eq!(t.expand(12_345, "a1b2c3"), "bench-a1b2c3-12345-x");
        let t = Template::parse("plain").unwrap();
        assert_eq!(t.expand(1, "r"), "plain");
        assert!(!t.has_index());
        assert_eq!(Template::parse("").unwrap().expand(1, "r"), "");
    }

    #[test]
    fn escapes_and_errors() {
        assert_eq!(
            Template::parse("{{{i}}}").unwrap().expand(3, "r"),
            "{3}".to_owned()
        );
        assert_eq!(
            Template::parse("a/{x}"),
            Err(TemplateError::UnknownPlaceholder("x".into()))
        );
        assert_eq!(Template::parse("a/{i"), Err(TemplateError::Unbalanced));
        assert_eq!(Template::parse("a}"), Err(TemplateError::Unbalanced));
        assert_eq!(Template::parse("{a{i}}"), Err(TemplateError::Unbalanced));
    }

    #[test]
    fn wildcard_filter_replaces_indexed_levels() {
        let t = Template::parse("bench/{run}/{i}").unwrap();
        assert_eq!(t.wildcard_filter("r9").unwrap(), "bench/r9/+");
        let t = Template::parse("t/dev-{i}/x").unwrap();
        assert_eq!(t.wildcard_filter("r").unwrap(), "t/+/x");
        let t = Template::parse("fixed/topic").unwrap();
        assert_eq!(t.wildcard_filter("r").unwrap(), "fixed/topic");
    }
}
