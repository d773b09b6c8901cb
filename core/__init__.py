"""The ground floor: paths, the embedded PostgreSQL, the warehouse, the stream catalog, the target."""
