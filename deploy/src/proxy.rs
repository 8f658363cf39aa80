//! TCP fault proxy: being written.
