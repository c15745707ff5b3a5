"""Corrective actions: from a submitted finding to a verified closure, with deadlines,
extensions, escalation and a timeline. (Their own package, beside `findings/`, which already
holds findings, sync and categories.)"""
