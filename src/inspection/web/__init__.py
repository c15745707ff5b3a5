"""Web plumbing shared by every controller: request checks and response helpers (`http`), the one
map from errors to problem details (`problems`), request-scoped dependencies, `Idempotency-Key`,
and the health probes. Only controllers and the app assembly import it."""
