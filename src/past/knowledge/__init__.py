"""Knowledge sets: the one format every part reads, and the sources that produce it."""
