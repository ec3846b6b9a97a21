"""Shared test support: real services and helpers used by the conftest files."""
