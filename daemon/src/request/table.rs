//! Asking the API server for its own `meta.k8s.io/v1` Table rendering.

/// Accept header: a server-side table, falling back to plain JSON.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// Accept header: a server-side table only.
pub const TABLE_ONLY: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// What each table row embeds of its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowObject {
    /// Cells only.
    None,
    /// The whole object.
    Object,
}

/// Asks the server to embed `what` in each table row.
pub fn include_object(request: &mut http::Request<Vec<u8>>, what: RowObject) {
    let what = match what {
        RowObject::None => "None",
        RowObject::Object => "Object",
    };
    let uri = request.uri().to_string();
    let joiner = if uri.contains('?') { '&' } else { '?' };
    if let Ok(uri) = format!("{uri}{joiner}includeObject={what}").parse() {
        *request.uri_mut() = uri;
    }
}
