"""The national e-prescription dialect of Decision 808/QĐ-BYT, as existing HIS software writes it."""
