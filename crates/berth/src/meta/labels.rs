//! See the functions below.
