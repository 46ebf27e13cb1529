//! Unit tests per mapping.
