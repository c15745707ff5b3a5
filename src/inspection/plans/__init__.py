"""Checklists, inspection plans, their teams and visits, and checklist responses."""
