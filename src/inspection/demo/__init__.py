"""`inspection demo`: a demonstration organisation (`organisation`) and, with `--history`, a
province's worth of past inspections (`history`, wording in `texts`)."""
