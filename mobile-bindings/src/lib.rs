//! mobile
