"""Cephalo package-feed: the built-in package repository."""
