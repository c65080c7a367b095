"""`ketenpoort demo`: a complete instance with synthetic partners, people and signals."""
