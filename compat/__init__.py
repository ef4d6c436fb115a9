"""`make compat`: the differential suite against the reference server (docs/compatibility.md)."""
