"""Reports a person reads: self-contained HTML built from the marts."""
