"""DermLens library."""
