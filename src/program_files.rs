//! Program files: fetching a module's program from the store (`http://`, `https://`,
//! `file://`) into its work folder, refusing names that leave either.
//!
//! CONTRACT (skeleton): filled in by the wasm work.
