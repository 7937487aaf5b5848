"""Cephalo."""
