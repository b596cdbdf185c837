//! `.cvd` / `.cld` containers.
