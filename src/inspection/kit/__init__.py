"""Small building blocks that know no domain: identifiers, times clients send, optimistic
concurrency, keyset pagination, diacritic-insensitive search. Anything may import them; they
import nothing of the service but `inspection.errors`."""
