"""Who may see and do what. The one place that decides visibility.

A grant (role, unit) covers the unit's whole subtree; a grant without a unit covers the whole
system. Every list, get, count, report and export filters with the SQL predicates built from
here, so a leak is a bug in one place, not in twenty handlers. Things a caller may not see answer
404. Three modules, importing upwards only what they need:

- `principal`: the signed-in user with their grants, and the rules that need nothing but them
  (no model is imported: a controller or a job can hold a principal without loading tables);
- `scopes`: subtrees of the unit tree as SQL (units, people, the unit concerned, report units);
- `seal`: plans and visits, and the confidentiality of unannounced visits (the seal).

Each domain's repository builds its `readable(principal)` from these (`findings.repository`,
`actions.repository`, `discipline.repository`, `audit.repository`).
"""
