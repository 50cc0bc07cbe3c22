//! Tests of the configuration reader over whole trees.
