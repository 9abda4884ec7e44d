"""Inspection (稽查): samples for re-check, findings, staff KPIs."""
