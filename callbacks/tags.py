"""Tag names that the callbacks write and the command-line tools read back."""

VERDICT_TAG = "sanity/verdict"
"""The SanityCallback's verdict table (a text summary), one per firing."""
