//! `bitdust openapi`: prints the OpenAPI 3 document of the local API (what `GET /api/v1/openapi.json` serves),
//! without a daemon. `docs/openapi.json` is its output; a test keeps the two equal.

use anyhow::Result;
use bitdust::out;
use bitdust_storage::Overrides;

use super::wings;

/// The document as pretty JSON.
///
/// # Errors
/// If it cannot be serialised.
pub fn document() -> Result<String> {
    Ok(bitdust_node::openapi(&wings(Overrides::default())).to_pretty_json()?)
}

/// Runs the command.
///
/// # Errors
/// If the document cannot be serialised.
pub fn run() -> Result<()> {
    out!("{}", document()?);
    Ok(())
}
