//! The supervisor: sole owner of runtime state.
