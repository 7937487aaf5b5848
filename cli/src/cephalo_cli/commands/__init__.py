"""The `cephalo` command groups, one module each."""
