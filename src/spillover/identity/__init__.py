"""Identity resolution: identifiers → edges → connected components → one customer per person."""
