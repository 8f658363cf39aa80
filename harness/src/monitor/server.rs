//! HTTP for the monitor: `/metrics`, `/` (dashboard), `/api/state`.
