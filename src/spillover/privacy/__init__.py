"""Privacy by construction: pseudonyms, consent, erasure and k-anonymity."""
