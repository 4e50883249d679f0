//! Brightbox Orbit object storage client (work in progress).
