"""Backend of a field app for public-service inspections."""
