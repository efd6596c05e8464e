//! The shaping arguments of a list call (`limit`, `continue`, `summary`,
//! `count_by`, `columns`, `fields`, `sortBy`), checked before anything is
//! sent: names are plain words, paths a JSONPath subset, sizes bounded.

use crate::{ops::Output, request::InvalidInput};

use super::project::FieldPath;

/// Most `columns`, `fields` or `count_by` entries in one call.
pub const MAX_NAMES: usize = 16;
/// Longest continue token accepted (a real one is ~90 characters).
pub const MAX_TOKEN_CHARS: usize = 512;

/// How a list answer is shaped.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Table, YAML or JSON.
    pub output: Output,
    /// Rows per page (0 = as many as fit the budget).
    pub limit: u32,
    /// The token of the page to resume from.
    pub continue_token: Option<String>,
    /// Counts instead of rows, grouped by these keys (empty = the kind's
    /// default keys); `None` = rows.
    pub count_by: Option<Vec<String>>,
    /// Only these columns (upper case).
    pub columns: Vec<String>,
    /// Fields to show (yaml/json) or add as columns (table).
    pub fields: Vec<FieldPath>,
    /// Sort order.
    pub sort_by: Option<SortKey>,
}

/// What rows are sorted by.
#[derive(Debug, Clone)]
pub enum SortKey {
    /// A column, by its upper-case name.
    Column(String),
    /// A field of each object.
    Path(FieldPath),
}

/// The raw arguments, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawShape<'a> {
    /// Output format.
    pub output: Output,
    /// `limit`.
    pub limit: u32,
    /// `continue`.
    pub continue_token: &'a str,
    /// `summary`.
    pub summary: bool,
    /// `count_by`.
    pub count_by: &'a [String],
    /// `columns`.
    pub columns: &'a [String],
    /// `fields`.
    pub fields: &'a [String],
    /// `sortBy`.
    pub sort_by: &'a str,
}

const NAME_RULE: &str =
    "must be a column name: letters, digits, '-', '_', '.', ' ' or '%', at most 64 characters";

/// A column or count key: a plain word, upper-cased.
fn column_name(field: &str, value: &str) -> Result<String, InvalidInput> {
    let ok = !value.trim().is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ' | '%'));
    if !ok {
        return Err(InvalidInput::new(field, value, NAME_RULE));
    }
    Ok(value.trim().to_ascii_uppercase())
}

fn names(field: &str, values: &[String]) -> Result<Vec<String>, InvalidInput> {
    if values.len() > MAX_NAMES {
        return Err(InvalidInput::new(
            field,
            &values.join(","),
            format!("must name at most {MAX_NAMES} entries"),
        ));
    }
    values.iter().map(|v| column_name(field, v)).collect()
}

impl Shape {
    /// Checks every shaping argument; a bad one names itself and what a
    /// good one looks like.
    pub fn parse(raw: RawShape<'_>) -> Result<Self, InvalidInput> {
        let continue_token = match raw.continue_token {
            "" => None,
            t if t.len() > MAX_TOKEN_CHARS
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                return Err(InvalidInput::new(
                    "continue",
                    t,
                    "must be a token from a previous page's footer, unchanged; call again without `continue` to start from the first page",
                ));
            }
            t => Some(t.to_string()),
        };
        let count_by = names("count_by", raw.count_by)?;
        let count_by = (raw.summary || !count_by.is_empty()).then_some(count_by);
        let columns = names("columns", raw.columns)?;
        if raw.fields.len() > MAX_NAMES {
            return Err(InvalidInput::new(
                "fields",
                &raw.fields.join(","),
                format!("must name at most {MAX_NAMES} paths"),
            ));
        }
        let fields = raw
            .fields
            .iter()
            .map(|f| FieldPath::parse("fields", f))
            .collect::<Result<Vec<_>, _>>()?;
        let sort_by = match raw.sort_by.trim() {
            "" => None,
            s if s.starts_with(['.', '$', '{']) => {
                Some(SortKey::Path(FieldPath::parse("sortBy", raw.sort_by)?))
            }
            _ => Some(SortKey::Column(column_name("sortBy", raw.sort_by)?)),
        };
        if count_by.is_some() && (!fields.is_empty() || !columns.is_empty()) {
            return Err(InvalidInput::new(
                "count_by",
                &raw.count_by.join(","),
                "counts cannot be combined with `columns` or `fields`; ask for one or the other",
            ));
        }
        if matches!(sort_by, Some(SortKey::Path(_)))
            && raw.output == Output::Table
            && fields.is_empty()
        {
            return Err(InvalidInput::new(
                "sortBy",
                raw.sort_by,
                "is a path, which sorts objects: add it to `fields` too, use output yaml/json, or sort a table by a column name (NAME, STATUS, AGE...)",
            ));
        }
        Ok(Self {
            output: raw.output,
            limit: raw.limit,
            continue_token,
            count_by,
            columns,
            fields,
            sort_by,
        })
    }

    /// Whether the clusters must send whole objects (not table rows).
    pub fn needs_objects(&self) -> bool {
        self.count_by.is_none()
            && (self.output != Output::Table
                || !self.fields.is_empty()
                || matches!(self.sort_by, Some(SortKey::Path(_))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>() -> RawShape<'a> {
        RawShape::default()
    }

    #[test]
    fn hostile_names_and_paths_are_refused_naming_the_argument() {
        let bad_cols = ["a\nb".to_string()];
        let e = Shape::parse(RawShape {
            columns: &bad_cols,
            ..raw()
        })
        .unwrap_err();
        assert_eq!(e.field, "columns");
        let many = vec!["NAME".to_string(); MAX_NAMES + 1];
        assert_eq!(
            Shape::parse(RawShape {
                columns: &many,
                ..raw()
            })
            .unwrap_err()
            .field,
            "columns"
        );
        for bad in [
            "$..*",
            ".a[?(@.b=='x')]",
            ".a;rm",
            ".a\u{0}",
            "..",
            ".a[-1:]",
        ] {
            let f = [bad.to_string()];
            let e = Shape::parse(RawShape {
                fields: &f,
                output: Output::Json,
                ..raw()
            })
            .unwrap_err();
            assert_eq!(e.field, "fields", "{bad}");
        }
        for bad in ["abc=", "x y\u{7}", &"A".repeat(600)] {
            let e = Shape::parse(RawShape {
                continue_token: bad,
                ..raw()
            })
            .unwrap_err();
            assert_eq!(e.field, "continue", "{bad}");
        }
        let e = Shape::parse(RawShape {
            sort_by: "NAME;DROP",
            ..raw()
        })
        .unwrap_err();
        assert_eq!(e.field, "sortBy");
    }

    #[test]
    fn summaries_and_objects_follow_the_arguments() {
        let s = Shape::parse(RawShape {
            summary: true,
            ..raw()
        })
        .unwrap();
        assert_eq!(s.count_by, Some(vec![]));
        assert!(!s.needs_objects());
        let by = ["cluster".to_string(), "Status".to_string()];
        let s = Shape::parse(RawShape {
            count_by: &by,
            ..raw()
        })
        .unwrap();
        assert_eq!(s.count_by.unwrap(), ["CLUSTER", "STATUS"]);
        let f = [".spec.containers[*].image".to_string()];
        let s = Shape::parse(RawShape {
            fields: &f,
            ..raw()
        })
        .unwrap();
        assert!(s.needs_objects());
        let e = Shape::parse(RawShape {
            sort_by: ".status.startTime",
            ..raw()
        })
        .unwrap_err();
        assert_eq!(e.field, "sortBy");
    }
}
