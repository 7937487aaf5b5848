"""Cephalo api-gateway: the one public address."""
