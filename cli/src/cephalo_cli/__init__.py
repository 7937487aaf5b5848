"""`cephalo`: the command-line tool for people and build servers (thin for now)."""
