"""HTTP conventions shared by every route: NL API Design Rules, problem+json, OpenAPI."""
