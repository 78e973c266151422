"""Everything that talks to MongoDB. It imports no ML code: a job that only reads or writes
documents starts fast."""
