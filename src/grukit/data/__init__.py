"""Readers of what users have (CSV series, long-format irregular observations) and of the real data
sets that ship inside PyPI packages."""
