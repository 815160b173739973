"""Script conversion under its old name: defined in :mod:`zh.script`, on the ground
floor, because the keyword index needs it too. Import from ``zh.script``; this name
stays only while branches written against it are merged."""

from zh.script import detect_script, normalize_for_match, to_simplified, to_traditional

__all__ = ["to_simplified", "to_traditional", "detect_script", "normalize_for_match"]
