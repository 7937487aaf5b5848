"""HTTP clients of other Cephalo services."""
