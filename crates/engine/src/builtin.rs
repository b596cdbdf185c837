//! The built-in database, compiled into the binary.
