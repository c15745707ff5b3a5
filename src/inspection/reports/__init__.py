"""Leadership's reports: summary, discipline, unit scorecards and the findings register, as
JSON, CSV, XLSX or PDF, every number read through `access/`."""
