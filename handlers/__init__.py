"""Pipeline steps, one per module: each a small named class with `async process(job)`."""
