"""Corrective actions: from a submitted finding to a verified closure, with deadlines,
extensions, escalation and a timeline. (DESIGN.md places them in `findings/`; they are their own
package because findings/ already holds findings, sync and categories.)"""
