"""`cephalo`: the command-line tool for people and build servers."""

__version__ = "0.1.0"
