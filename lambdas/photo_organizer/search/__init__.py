"""Search: the index document, the SearchIndex port, query understanding and ranking shared by both backends."""
