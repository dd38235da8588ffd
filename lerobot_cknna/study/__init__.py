"""The study over many policies: sweep files, and running each policy of a sweep."""
