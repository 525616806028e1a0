"""Importing contacts from CSV, JSON and JSON Lines files (dashboard and API alike)."""
