"""Backup, restore and retention of everything a Cercle deployment holds."""
