"""Helpers of folder.py (a sub-folder of the program)."""
