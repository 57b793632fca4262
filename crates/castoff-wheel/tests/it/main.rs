//! castoff-wheel's integration tests, in one binary (docs/testing.md, "Test layout").
//!
//! - [`offline`]: platform tags, the wheel as files, reproducibility; needs cargo and nothing
//!   else.
//! - [`live`]: the wheels in the hands of twine, check-wheel-contents, auditwheel, pip and uv
//!   from the harness's tools venv (`cargo xtask test`); without it these tests fail with
//!   instructions, never skip.

mod live;
mod offline;
mod support;
