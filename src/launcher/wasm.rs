//! WebAssembly launcher: runs a WASI preview 1 program in `wasmi`.
//!
//! CONTRACT (skeleton): filled in by the wasm work.
